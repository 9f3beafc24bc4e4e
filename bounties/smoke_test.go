package bounties

import (
	"testing"

	"gorm.io/gorm"
)

func TestHappyPath(t *testing.T) {
	each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, true)
		b := e.fund("o/r", 7, 100_00)
		e.onboard("alice")
		cs := e.win("o/r", 7, 20, "alice")
		if len(cs) != 1 || cs[0].AmountCents != 100_00 || cs[0].State != CreditAwaiting {
			t.Fatalf("credits %+v", cs)
		}
		r, err := e.s.ApprovePayout(e.ctx, ApproveInput{Repo: "o/r", Number: 7, Actor: "maint", Maintainer: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r.Message)
		c := e.credit(cs[0].ID)
		if c.State != CreditPaid || c.TransferID == nil {
			t.Fatalf("credit %+v", c)
		}
		bb, _ := bountyByID(db, b.ID)
		if bb.State != BountyPaid {
			t.Fatalf("bounty %s", bb.State)
		}
		n, _ := e.notes.last("o/r", 7)
		t.Log(n.Markdown, n.AddLabels, n.RemoveLabels)
	})
}
