-- The labels of issues that carry bounties, as GitHub reported them: the board shows them and
-- filters by them. Labels belong to the issue, not to one bounty (a cancelled bounty's issue
-- may get a new one). folded is the name in lower case (GitHub label names are unique
-- regardless of case), folded in Go so SQLite and PostgreSQL compare alike; name keeps the
-- spelling to show.
-- +goose Up
CREATE TABLE bounty_issue_labels (
    repo   TEXT NOT NULL,
    issue  INTEGER NOT NULL,
    folded TEXT NOT NULL,
    name   TEXT NOT NULL,
    PRIMARY KEY (repo, issue, folded)
);
CREATE INDEX bounty_issue_labels_folded ON bounty_issue_labels (folded);

-- +goose Down
DROP TABLE bounty_issue_labels;
