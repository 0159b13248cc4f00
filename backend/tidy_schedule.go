package backend

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// When tidy (tidy.go) runs on its own: every tidy_interval on each
// cluster's active node, from the periodic function.

const (
	// periodicTidyBudget bounds a scheduled run: it shares Vault's 90s
	// rollback deadline with rotation and WAL rollback. What is left over
	// is picked up on the next one-minute tick.
	periodicTidyBudget = 45 * time.Second

	tidyStatePrefix = "tidy/"
	tidyStatePath   = tidyStatePrefix + "state"
)

// tidyState is when the scheduled tidy last ran on this cluster.
type tidyState struct {
	LastRun    time.Time `json:"last_run"`
	Incomplete bool      `json:"incomplete"`
}

func getTidyState(ctx context.Context, s logical.Storage) (*tidyState, error) {
	st := &tidyState{}
	entry, err := s.Get(ctx, tidyStatePath)
	if err != nil || entry == nil {
		return st, err
	}
	return st, entry.DecodeJSON(st)
}

// tidyAllowed: records are local storage, so every cluster's active node
// tidies its own (performance secondaries included); performance standbys
// and DR secondaries cannot write and never do.
func (b *backend) tidyAllowed() bool {
	st := b.System().ReplicationState()
	return !st.HasState(consts.ReplicationPerformanceStandby) && !st.HasState(consts.ReplicationDRSecondary)
}

// periodicTidy is called from PeriodicFunc on Vault's one-minute tick and
// tidies when tidy_interval has passed since the last run, or at once after
// a run that was cut short. Failures are logged here and not returned: the
// next run retries, and Vault would otherwise log them again every minute.
func (b *backend) periodicTidy(ctx context.Context, s logical.Storage) {
	if !b.tidyAllowed() {
		return
	}
	cfg, err := getConfig(ctx, s)
	if err != nil || cfg == nil {
		return
	}
	interval := cfg.tidyInterval()
	if interval <= 0 {
		return
	}
	st, err := getTidyState(ctx, s)
	if err != nil {
		b.Logger().Warn("tidy: cannot read schedule state", "error", err)
		return
	}
	now := time.Now()
	if !st.Incomplete && now.Sub(st.LastRun) < interval {
		return
	}
	ids, err := listAccountIDs(ctx, s)
	if err != nil {
		b.Logger().Warn("tidy: cannot list account records", "error", err)
		return
	}

	var rep *tidyReport
	if len(ids) == 0 {
		rep = &tidyReport{}
	} else {
		sctx, cancel := context.WithTimeout(ctx, periodicTidyBudget)
		rep, err = b.tidy(sctx, s, now, false, false)
		cancel()
	}
	switch {
	case errors.Is(err, errTidyBusy):
		return
	case err != nil:
		b.Logger().Warn("scheduled tidy failed; will retry at the next interval", "error", err)
	case rep.eventful():
		b.Logger().Info("scheduled tidy finished", rep.logArgs()...)
	default:
		b.Logger().Debug("scheduled tidy finished", rep.logArgs()...)
	}
	next := &tidyState{LastRun: now, Incomplete: err == nil && rep.Incomplete}
	entry, perr := logical.StorageEntryJSON(tidyStatePath, next)
	if perr == nil {
		perr = s.Put(ctx, entry)
	}
	if perr != nil {
		b.Logger().Warn("tidy: cannot save schedule state", "error", perr)
	}
}
