package backend

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// An issue is committed once its account record is written (commitCreate):
// from then on the record, not the WAL entry, protects the account, since
// rollback never deletes an account a committed record claims (wal.go). The
// entry is then only clutter, and deleting it need not hold up the response.
// walDeleter deletes such entries in the background, one at a time, so an
// issue costs two storage writes on its request path (WAL entry, record)
// and the third (the entry's delete) after it.
//
// Nothing depends on the delete happening: an entry left behind by a crash
// or a failed delete is found by Vault's rollback after the rollback age,
// which sees the committed record, keeps the account, and drops the entry.

// walDeleteQueue bounds the entries awaiting deletion. A full queue means
// the worker falls behind the issue rate; the issue then deletes its own
// entry in the request, as before, which is the back-pressure.
const walDeleteQueue = 4096

// walDeleteTimeout bounds one background delete.
const walDeleteTimeout = 10 * time.Second

type walDeleter struct {
	// logger is read at use: the backend's logger exists only after Setup.
	logger func() hclog.Logger

	queue chan walDeletion
	stop  chan struct{}
	once  sync.Once
	// done closes when the worker has exited.
	done chan struct{}
}

// walDeletion is one entry to delete, or, with flushed set, a marker the
// worker closes once everything queued before it is done.
type walDeletion struct {
	s       logical.Storage
	id      string
	flushed chan struct{}
}

func newWALDeleter(logger func() hclog.Logger) *walDeleter {
	d := &walDeleter{
		logger: logger,
		queue:  make(chan walDeletion, walDeleteQueue),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go d.run()
	return d
}

// enqueue hands an entry to the worker, or deletes it now when the queue is
// full or the backend is shutting down.
func (d *walDeleter) enqueue(ctx context.Context, s logical.Storage, id string) {
	select {
	case <-d.stop:
	default:
		select {
		case d.queue <- walDeletion{s: s, id: id}:
			return
		default:
		}
	}
	d.delete(ctx, s, id)
}

func (d *walDeleter) run() {
	defer close(d.done)
	for {
		select {
		case <-d.stop:
			return
		case w := <-d.queue:
			if w.flushed != nil {
				close(w.flushed)
				continue
			}
			crashpoint(d.logger(), "issue.before_wal_delete")
			ctx, cancel := context.WithTimeout(context.Background(), walDeleteTimeout)
			d.delete(ctx, w.s, w.id)
			cancel()
		}
	}
}

func (d *walDeleter) delete(ctx context.Context, s logical.Storage, id string) {
	if err := framework.DeleteWAL(ctx, s, id); err != nil {
		d.logger().Warn("could not delete the WAL entry of a committed issue; rollback will drop it", "wal_id", id, "error", err)
	}
}

// settle waits, at most wait, until everything queued so far is deleted.
func (d *walDeleter) settle(wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	marker := walDeletion{flushed: make(chan struct{})}
	select {
	case d.queue <- marker:
	case <-d.stop:
		return
	case <-timer.C:
		return
	}
	select {
	case <-marker.flushed:
	case <-d.stop:
	case <-timer.C:
	}
}

// close stops the worker on unmount or reload once what is queued is
// deleted, waiting at most wait: what is left stays for rollback.
func (d *walDeleter) close(wait time.Duration) {
	d.once.Do(func() {
		d.settle(wait)
		close(d.stop)
		<-d.done
	})
}
