package backend

// lockStaticRole takes a static role's lock and returns its release. Every
// change to a static role, its rotation, the end of its previous key's
// overlap and the rollback of its WAL entries hold it, so each sees the
// role as the others left it. Its key keeps static roles' locks apart from
// dynamic roles' of the same name (one lock pool, roleLock).
func (b *backend) lockStaticRole(name string) (unlock func()) {
	lock := b.roleLock("static-role/" + name)
	lock.Lock()
	return lock.Unlock
}
