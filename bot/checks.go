package bot

import (
	"context"

	"github.com/gradforge/gradforge/ci"
)

// Checks implements ci.Checks for the App: check runs and labels through ci's own go-github
// implementation with the installation client of each repository, and CI's comment as a
// section of the bot's one comment per pull request instead of a comment of its own.
type Checks struct {
	ci.GitHub
	Bot *Bot
}

// NewChecks returns the ci.Checks of a bot.
func NewChecks(b *Bot) Checks { return Checks{GitHub: ci.GitHub{Client: b.ClientFor}, Bot: b} }

var _ ci.Checks = Checks{}

// Comment sets section key of the bot's comment on a pull request.
func (k Checks) Comment(ctx context.Context, repo string, number int, key, body string) error {
	gh, err := k.Bot.ClientFor(ctx, repo)
	if err != nil {
		return err
	}
	return k.Bot.SetSection(ctx, gh, repo, number, key, body)
}
