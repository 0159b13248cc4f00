package backend

import "sync"

// loadOnce is the guard of an in-memory copy read from storage on first use
// (the ledger's index, ledger.go, and the static keys' entries,
// static_ledger.go): every use after the load takes only the read lock. It
// is not a sync.Once because a load that fails is tried again by the next
// use, not remembered. mu also guards the copy itself, which its owner
// keeps exact under it; loaded says whether there is a copy to keep exact.
type loadOnce struct {
	mu     sync.RWMutex
	loaded bool
}

// ensureLoaded runs load, under the write lock, unless one has succeeded.
func (o *loadOnce) ensureLoaded(load func() error) error {
	o.mu.RLock()
	loaded := o.loaded
	o.mu.RUnlock()
	if loaded {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.loaded {
		return nil
	}
	if err := load(); err != nil {
		return err
	}
	o.loaded = true
	return nil
}
