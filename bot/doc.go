// Package bot is the GitHub App: webhook intake and signature checks, installation auth,
// the comment-command grammar, permissions and the bot's replies.
package bot
