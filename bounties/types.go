package bounties

import "time"

// Bounty states. open → claimed → paid, open → cancelled, open → expired; nothing leaves
// paid, cancelled or expired.
const (
	BountyOpen      = "open"
	BountyClaimed   = "claimed"
	BountyPaid      = "paid"
	BountyCancelled = "cancelled"
	BountyExpired   = "expired"
)

// Attempt states: an active attempt is the bounty's lock; it ends released (by its holder),
// expired (its time ran out), unlocked (by a maintainer) or finished (the bounty was won or
// closed).
const (
	AttemptActive   = "active"
	AttemptReleased = "released"
	AttemptExpired  = "expired"
	AttemptUnlocked = "unlocked"
	AttemptFinished = "finished"
)

// Claim states: pending until its PR merges or closes; then won (first merged claim) or lost
// (with the reason why not).
const (
	ClaimPending   = "pending"
	ClaimWon       = "won"
	ClaimLost      = "lost"
	ClaimWithdrawn = "withdrawn"
)

// Credit (payout) states: awaiting_approval → approved → transferring → paid | failed;
// failed → approved on retry; paid → reversed when Stripe reports the transfer reversed;
// awaiting_approval → declined when a maintainer refuses the payout (the bounty reopens).
const (
	CreditAwaiting     = "awaiting_approval"
	CreditApproved     = "approved"
	CreditTransferring = "transferring"
	CreditPaid         = "paid"
	CreditFailed       = "failed"
	CreditReversed     = "reversed"
	CreditDeclined     = "declined"
)

// Funding states: a Checkout funding is pending until Stripe says paid; platform fundings
// are funded at once. Funded money leaves only as an award or a refund.
const (
	FundingPending   = "pending"
	FundingFunded    = "funded"
	FundingRefunding = "refunding"
	FundingRefunded  = "refunded"
	FundingExpired   = "expired"
)

// Bounty is a bounty on one issue. Its pool is kept equal to the ledger (see addToPool).
type Bounty struct {
	ID           int64
	Repo         string
	Issue        int
	Title        string
	State        string
	Currency     string
	CreatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ExpiresAt    *time.Time
	ClosedAt     *time.Time
	ClosedBy     string
	ClosedReason string
	// PoolCents is the funded pool (the bounty's ledger balance plus what it has awarded,
	// i.e. everything sponsors put in net of refunds), stored with the bounty and updated
	// with every ledger post; PledgedCents is what pending Checkout sessions would add,
	// filled by BountyDetail.
	PoolCents    int64
	PledgedCents int64 `gorm:"-"`
	// Labels are the issue's labels as GitHub last reported them, filled by reads.
	Labels []string `gorm:"-"`
}

// Funding is one sponsor's contribution to a bounty's pool.
type Funding struct {
	ID                int64
	BountyID          int64
	Sponsor           string
	AmountCents       int64
	Source            string // "checkout" or "platform"
	State             string
	RequestKey        string
	CheckoutSessionID *string
	CheckoutURL       string
	PaymentIntentID   *string
	RefundKey         *string
	RefundID          *string
	CreatedAt         time.Time
	FundedAt          *time.Time
	RefundedAt        *time.Time
	// FeeCents is Stripe's processing fee on a card funding, nil until read.
	FeeCents *int64
}

// Attempt is a contributor's lock on a bounty.
type Attempt struct {
	ID        int64
	BountyID  int64
	Repo      string
	Login     string
	State     string
	StartedAt time.Time
	ExpiresAt time.Time
	EndedAt   *time.Time
	EndedBy   string
	Reason    string
}

// Claim is a pull request's claim on a bounty.
type Claim struct {
	ID        int64
	BountyID  int64
	Repo      string
	PR        int `gorm:"column:pr"`
	Author    string
	State     string
	Reason    string
	CreatedAt time.Time
	DecidedAt *time.Time
}

// Credit is money owed to one person: a share of a bounty or a tip.
type Credit struct {
	ID                int64
	Kind              string // "bounty" or "tip"
	BountyID          *int64
	ClaimID           *int64
	Repo              string
	Number            int
	Recipient         string
	AmountCents       int64
	Currency          string
	State             string
	RequestKey        *string
	IdempotencyKey    string
	Retries           int
	TransferID        *string
	Failure           string
	CreatedBy         string
	CreatedAt         time.Time
	ApprovedBy        string
	ApprovedAt        *time.Time
	TransferringSince *time.Time
	PaidAt            *time.Time
	UpdatedAt         time.Time
}

// Event is one line of a bounty's or person's history: who did what, when.
type Event struct {
	ID        int64
	BountyID  *int64
	Repo      string
	Number    int
	Kind      string
	Actor     string
	Subject   string
	Message   string
	CreatedAt time.Time
}
