// Package backend is the OpenAI secrets engine: it holds one OpenAI admin key
// and issues short-lived project service-account keys on Vault leases.
package backend

import (
	"context"
	"fmt"
	"github.com/hashicorp/go-hclog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// Version is stamped at build time with -ldflags "-X .../backend.Version=v1.2.3".
var Version = "v0.0.0-dev"

const operationPrefix = "openai"

// walRollbackMinAgeEnv lets tests and operators shorten how long a WAL entry
// must age before Vault's rollback manager acts on it (see README).
const walRollbackMinAgeEnv = "OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE"

// defaultWALRollbackMinAge must exceed the longest create call (retries
// included) so rollback never races an issue still in flight. A create lasts
// at most retry_budget plus one request_timeout (client.go); config refuses
// settings whose sum does not fit below this age (config_retry.go).
const defaultWALRollbackMinAge = 5 * time.Minute

// minWALRollbackMinAge is the shortest age any config can honour: the
// smallest retry_budget and request_timeout (1s each) plus the commit margin.
// Vault itself turns 0 into its own default of 10 minutes, so 0 is refused
// too rather than silently meaning something else.
const minWALRollbackMinAge = minRetryBudget + time.Second + createCommitMargin

const backendHelp = `
The OpenAI secrets engine issues short-lived OpenAI API keys. Each key belongs
to its own project service account, created when a lease is issued and deleted
when the lease is revoked or expires. Write the organization's admin API key to
"config", define roles under "roles/", then read "creds/<role>".
`

// Factory is the plugin entry point used by Vault.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	if err := checkWALRollbackMinAgeEnv(); err != nil {
		return nil, err
	}
	b := newBackend()
	if conf != nil && conf.System != nil {
		// Every request asks the SystemView for the replication state
		// (replication_state_cache.go).
		wrapped := *conf
		wrapped.System = newReplicationStateCache(conf.System)
		conf = &wrapped
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

type backend struct {
	*framework.Backend

	// clientMu guards client and clientConfig; a nil client is rebuilt
	// from config on demand. clientConfig is the stored config the client
	// was built from: the issue path reads settings that only a config
	// write changes (max_live_keys) here instead of from storage on every
	// request. Both are dropped on every config write, rotation and
	// invalidation (resetClient); bookkeeping that rotation writes without a
	// reset (pending key deletions) may be stale here and is read from
	// storage where it matters. Never modified.
	clientMu     sync.RWMutex
	client       adminClient
	clientConfig *openaiConfig

	// newClient builds the OpenAI client; tests replace it to wrap faults.
	newClient func(clientSettings) adminClient

	// configMu serialises writers of config (config writes, rotation);
	// readers never take it.
	configMu sync.Mutex

	// tidyMu lets one tidy run at a time (tidy.go).
	tidyMu sync.Mutex

	// roleLocks serialise writes to the same role without a global lock.
	roleLocks []*locksutil.LockEntry

	roleCache roleCache

	// createGuard makes issue commits and WAL rollbacks of the same create
	// exclusive (wal.go).
	createGuard *createGuard

	// liveKeys counts this mount's live keys for the max_live_keys caps
	// (live_keys.go).
	liveKeys *liveKeys

	// walDeleter deletes committed issues' WAL entries off the request
	// path (wal_deleter.go).
	walDeleter *walDeleter

	// ledger indexes the account records, which are the issuance ledger
	// (ledger.go).
	ledger *ledgerIndex

	// metrics is this mount's own registry (metrics.go).
	metrics *metrics

	// leaseEnds tells expiries from revocations (secret_api_key.go).
	leaseEnds leaseEnds
}

func newBackend() *backend {
	b := &backend{
		newClient:   func(s clientSettings) adminClient { return newSDKClient(s) },
		roleLocks:   locksutil.CreateLocks(),
		createGuard: newCreateGuard(),
		ledger:      newLedgerIndex(),
		metrics:     newMetrics(),
	}
	b.liveKeys = newLiveKeys(b.ledger.liveRoles)
	b.walDeleter = newWALDeleter(func() hclog.Logger { return b.Logger() })
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{configStoragePath, roleStoragePrefix, staticRoleStoragePrefix},
			LocalStorage:    []string{framework.WALPrefix, accountStoragePrefix, tidyStatePrefix},
		},
		Paths: framework.PathAppend(
			[]*framework.Path{pathConfig(b), pathConfigRotateRoot(b)},
			pathRoles(b),
			[]*framework.Path{pathCreds(b), pathTidy(b)},
			pathKeys(b),
			pathStaticRoles(b),
			[]*framework.Path{pathStaticCreds(b)},
			[]*framework.Path{pathMetrics(b)},
			pathUsage(b),
		),
		Secrets:           []*framework.Secret{secretAPIKey(b)},
		WALRollback:       b.walRollback,
		PeriodicFunc:      b.periodicFunc,
		RotateCredential:  b.rotateCredential,
		WALRollbackMinAge: walRollbackMinAge(),
		Invalidate:        b.invalidate,
		Clean:             b.clean,
		InitializeFunc:    b.initialize,
		RunningVersion:    Version,
	}
	return b
}

func walRollbackMinAge() time.Duration {
	if v := os.Getenv(walRollbackMinAgeEnv); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
	}
	return defaultWALRollbackMinAge
}

// checkWALRollbackMinAgeEnv refuses to start on a rollback age that a
// create could outlast (or that Vault would replace with its own default):
// rollback could then delete an account a request is about to return.
func checkWALRollbackMinAgeEnv() error {
	v := os.Getenv(walRollbackMinAgeEnv)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%s=%q is not a Go duration such as 5m", walRollbackMinAgeEnv, v)
	}
	if d < minWALRollbackMinAge {
		return fmt.Errorf("%s=%s is shorter than the shortest possible create (%s: retry_budget and request_timeout of 1s each, "+
			"plus the commit margin); rollback could delete an account an issue is about to return", walRollbackMinAgeEnv, v, minWALRollbackMinAge)
	}
	return nil
}

// invalidate runs on standbys and performance secondaries when another node
// writes config, so every node drops its client built from the old key.
func (b *backend) invalidate(_ context.Context, key string) {
	if key == configStoragePath {
		b.resetClient()
	}
	b.invalidateRole(key)
}

// clean runs when the mount is disabled or its plugin reloaded.
func (b *backend) clean(context.Context) {
	b.walDeleter.close(walDeleterCloseWait)
	b.resetClient()
}

// walDeleterCloseWait bounds how long unmount waits for queued WAL deletes.
const walDeleterCloseWait = 2 * time.Second

func (b *backend) resetClient() {
	b.clientMu.Lock()
	b.client, b.clientConfig = nil, nil
	b.clientMu.Unlock()
}

// getClient returns the cached client, building it from stored config once.
func (b *backend) getClient(ctx context.Context, s logical.Storage) (adminClient, error) {
	c, _, err := b.cachedConfig(ctx, s)
	return c, err
}

// cachedConfig returns the cached client and the config it was built from,
// reading config from storage only when nothing is cached. The config must
// not be modified.
func (b *backend) cachedConfig(ctx context.Context, s logical.Storage) (adminClient, *openaiConfig, error) {
	b.clientMu.RLock()
	c, cfg := b.client, b.clientConfig
	b.clientMu.RUnlock()
	if c != nil {
		return c, cfg, nil
	}

	b.clientMu.Lock()
	defer b.clientMu.Unlock()
	if b.client != nil {
		return b.client, b.clientConfig, nil
	}
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, nil, errMissingConfig
	}
	b.client, b.clientConfig = b.buildClient(cfg.clientSettings()), cfg
	return b.client, b.clientConfig, nil
}

var errMissingConfig = fmt.Errorf("the OpenAI engine is not configured: write admin_api_key to config first")

// clientAfterAuthFailure returns the current client when err is an auth
// failure of a call made with used and a rotation has since replaced the key,
// so requests in flight across a rotation retry once instead of failing.
// An auth failure means OpenAI did nothing, so the retry is safe.
func (b *backend) clientAfterAuthFailure(ctx context.Context, s logical.Storage, used adminClient, err error) adminClient {
	if !isAuthError(err) {
		return nil
	}
	current, cerr := b.getClient(ctx, s)
	if cerr != nil || current == used {
		return nil
	}
	return current
}
