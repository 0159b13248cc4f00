package backend

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Tidy deletes accounts this mount created whose lease can no
// longer be alive: a lease never outlives its record's ExpiresAt, so a record
// older than that plus tidyGracePeriod belongs to a lease Vault lost or gave
// up on (irrevocable, force-revoked, storage restored from backup), and an
// account whose key OpenAI has expired is a dead shell either way.
//
// It only ever touches accounts it has a record of, and only when OpenAI
// still lists the account under the recorded name: a record whose id now
// carries another name is dropped without touching the account.
const (
	// tidyGracePeriod covers clock skew between nodes and Vault's own delay
	// in revoking an expired lease, so tidy never races a revocation.
	tidyGracePeriod = time.Hour
	// nameMarker is the literal start of defaultNameTemplate. Untracked
	// accounts carrying it are reported, never deleted: they may belong to
	// another mount, or to a lease issued before records existed.
	nameMarker = "vault-"
)

// tidyReport is what a run did (or, with DryRun, would do).
type tidyReport struct {
	DryRun          bool
	Records         int // records examined
	Stale           int // past max lifetime plus grace
	KeyExpired      int // key expired at OpenAI, not yet stale
	Deleted         int // accounts deleted
	AlreadyGone     int // records dropped: OpenAI no longer has the account
	NotOurs         int // records dropped: the id now carries another name
	Failed          int // deletes that failed; retried next run
	UntrackedMarked int // accounts named nameMarker+... that no record owns
	ProjectsListed  int
	Incomplete      bool
	Reason          string
	Took            time.Duration
}

func (r *tidyReport) data() map[string]interface{} {
	return map[string]interface{}{
		"dry_run":          r.DryRun,
		"records":          r.Records,
		"stale":            r.Stale,
		"key_expired":      r.KeyExpired,
		"deleted":          r.Deleted,
		"already_gone":     r.AlreadyGone,
		"not_ours":         r.NotOurs,
		"failed":           r.Failed,
		"untracked_marked": r.UntrackedMarked,
		"projects_listed":  r.ProjectsListed,
		"incomplete":       r.Incomplete,
		"reason":           r.Reason,
		"duration_ms":      r.Took.Milliseconds(),
	}
}

func (r *tidyReport) logArgs() []interface{} {
	return []interface{}{
		"dry_run", r.DryRun, "records", r.Records, "stale", r.Stale, "key_expired", r.KeyExpired,
		"deleted", r.Deleted, "already_gone", r.AlreadyGone, "not_ours", r.NotOurs, "failed", r.Failed,
		"untracked_marked", r.UntrackedMarked, "projects_listed", r.ProjectsListed,
		"incomplete", r.Incomplete, "reason", r.Reason,
		// Milliseconds as an integer: a time.Duration crosses the plugin's
		// log channel as a float of nanoseconds (duration="2e+06").
		"duration_ms", r.Took.Milliseconds(),
	}
}

// eventful reports whether the run did or found anything an operator should see.
func (r *tidyReport) eventful() bool {
	return r.Stale+r.KeyExpired+r.Deleted+r.AlreadyGone+r.NotOurs+r.Failed > 0 || r.Incomplete
}

var errTidyBusy = errors.New("a tidy run is already in progress on this node")

// tidy runs one pass. allProjects also lists the projects of every record
// and role, to report untracked marked accounts; otherwise only projects with
// something to delete are listed, so a quiet mount costs no upstream calls.
func (b *backend) tidy(ctx context.Context, s logical.Storage, now time.Time, dryRun, allProjects bool) (*tidyReport, error) {
	if !b.tidyMu.TryLock() {
		return nil, errTidyBusy
	}
	defer b.tidyMu.Unlock()
	start := time.Now()
	rep := &tidyReport{DryRun: dryRun}
	defer func() { rep.Took = time.Since(start) }()

	client, err := b.getClient(ctx, s)
	if err != nil {
		return nil, err
	}
	ids, err := listAccountIDs(ctx, s)
	if err != nil {
		return nil, err
	}
	// The index says which records are ledger only, so a long retention
	// does not make every sweep read every revoked entry.
	if err := b.ledger.ensure(ctx, s); err != nil {
		return nil, err
	}
	tracked := make(map[string]bool, len(ids))
	byProject := map[string][]*accountRecord{} // candidates for deletion
	projects := map[string]bool{}
	live := make([]string, 0, len(ids))
	for _, id := range ids {
		tracked[id] = true
		if e, ok := b.ledger.entry(id); ok && e.revokedAt != 0 {
			continue
		}
		live = append(live, id)
	}
	// In parallel: read one after another, 50,826 records took 52 s
	// (bench-scale), past the scheduled sweep's time budget.
	recs, errs := readAccountRecords(ctx, s, live)
	for i, id := range live {
		r, err := recs[i], errs[i]
		if err != nil {
			// Undecodable: leave it for an operator rather than guess.
			b.Logger().Error("tidy: skipping unreadable account record", "service_account_id", id, "error", err)
			rep.Failed++
			continue
		}
		if r == nil || r.revoked() {
			// Deleted meanwhile, or ledger only (ledger.go): its account
			// is gone at OpenAI, so the sweep never deletes it again.
			continue
		}
		rep.Records++
		if allProjects {
			projects[r.ProjectID] = true
		}
		switch {
		case now.After(time.Unix(r.ExpiresAt, 0).Add(tidyGracePeriod)):
			rep.Stale++
		case r.KeyExpiresAt > 0 && now.After(time.Unix(r.KeyExpiresAt, 0).Add(clockSkew)):
			rep.KeyExpired++
		default:
			continue
		}
		if !openaiIDPattern.MatchString(r.ProjectID) || !openaiIDPattern.MatchString(r.ServiceAccountID) {
			b.Logger().Error("tidy: skipping malformed account record", "service_account_id", id)
			rep.Failed++
			continue
		}
		byProject[r.ProjectID] = append(byProject[r.ProjectID], r)
		projects[r.ProjectID] = true
	}
	// Static roles' accounts are the engine's (or the operator's) for as
	// long as the role exists: never untracked, never candidates.
	if err := trackStaticAccounts(ctx, s, tracked, projects, allProjects); err != nil {
		return nil, err
	}
	if allProjects {
		roles, err := s.List(ctx, roleStoragePrefix)
		if err != nil {
			return nil, err
		}
		for _, name := range roles {
			if role, err := getRole(ctx, s, name); err == nil && role != nil {
				projects[role.ProjectID] = true
			}
		}
	}

	for _, projectID := range sortedKeys(projects) {
		if err := ctx.Err(); err != nil {
			rep.Incomplete, rep.Reason = true, "time budget exhausted"
			break
		}
		stop, err := b.tidyProject(ctx, s, client, projectID, byProject[projectID], tracked, dryRun, rep)
		if err != nil {
			return rep, err
		}
		if stop {
			break
		}
	}
	return rep, nil
}

// trackStaticAccounts marks every static role's account tracked and, with
// allProjects, its project listed.
func trackStaticAccounts(ctx context.Context, s logical.Storage, tracked, projects map[string]bool, allProjects bool) error {
	names, err := s.List(ctx, staticRoleStoragePrefix)
	if err != nil {
		return err
	}
	for _, name := range names {
		r, err := getStaticRole(ctx, s, name)
		if err != nil {
			return err
		}
		if r == nil {
			continue
		}
		tracked[r.ServiceAccountID] = true
		if allProjects {
			projects[r.ProjectID] = true
		}
	}
	return nil
}

// tidyProject lists one project and settles its candidates. stop is true
// when OpenAI is throttling or the budget ran out: the rest waits for the
// next run rather than pressing on.
func (b *backend) tidyProject(ctx context.Context, s logical.Storage, client adminClient, projectID string,
	candidates []*accountRecord, tracked map[string]bool, dryRun bool, rep *tidyReport) (stop bool, err error) {
	names := map[string]string{}
	err = client.ListServiceAccounts(ctx, projectID, func(sa serviceAccount) bool {
		names[sa.ID] = sa.Name
		if !tracked[sa.ID] && strings.HasPrefix(sa.Name, nameMarker) {
			rep.UntrackedMarked++
			if strings.HasPrefix(sa.Name, staticAccountNameBase("")) {
				b.Logger().Warn("tidy: an account named like a static role's has no static role on this mount; reported, not deleted (it may be another mount's): delete it by hand if it is this mount's",
					"project_id", projectID, "service_account_id", sa.ID, "name", sa.Name)
			}
		}
		return true
	})
	var projectGone bool
	if err != nil {
		// A 404 may mean a project this admin key cannot see, and a 400 an
		// archived project: the project itself decides (account_gone.go).
		projectGone, err = b.confirmProjectGone(ctx, client, projectID, err)
	}
	if err != nil {
		rep.Failed += len(candidates)
		rep.Incomplete, rep.Reason = true, stopReason(err)
		b.Logger().Warn("tidy: listing service accounts failed; will retry next run", "project_id", projectID, "error", err)
		return true, nil
	}
	rep.ProjectsListed++

	for i, r := range candidates {
		name, exists := names[r.ServiceAccountID]
		switch {
		case projectGone, !exists:
			rep.AlreadyGone++
		case name != r.Name:
			rep.NotOurs++
			b.Logger().Warn("tidy: recorded account now carries another name; leaving it alone",
				"service_account_id", r.ServiceAccountID, "recorded_name", r.Name, "name", name)
		case dryRun:
			rep.Deleted++
			continue
		default:
			err := client.DeleteServiceAccount(ctx, projectID, r.ServiceAccountID)
			if gone, cerr := b.confirmAccountGone(ctx, client, projectID, r.ServiceAccountID, err); gone {
				err = nil
			} else {
				err = cerr
			}
			if err != nil {
				rep.Failed++
				b.Logger().Warn("tidy: deleting service account failed; will retry next run",
					"project_id", projectID, "service_account_id", r.ServiceAccountID, "error", err)
				if isThrottled(err) || ctx.Err() != nil {
					rep.Failed += len(candidates) - i - 1
					rep.Incomplete, rep.Reason = true, stopReason(err)
					return true, nil
				}
				continue
			}
			rep.Deleted++
			b.metrics.accountSwept()
			b.Logger().Info("tidy: deleted orphaned service account", append(r.logFields(), "name", r.Name,
				"created_at", time.Unix(r.CreatedAt, 0).UTC().Format(time.RFC3339))...)
		}
		if dryRun {
			continue
		}
		if _, err := b.retireAccount(ctx, s, r.ServiceAccountID, revokedByTidy, ""); err != nil {
			return true, err
		}
	}
	return false, nil
}

func stopReason(err error) string {
	switch {
	case isThrottled(err):
		return "rate limited by OpenAI"
	case errors.Is(err, context.DeadlineExceeded):
		return "time budget exhausted"
	default:
		return "OpenAI error: " + err.Error()
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
