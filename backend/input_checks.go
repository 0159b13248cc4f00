package backend

// Values that end up in HTTP headers (the admin key in Authorization, the
// organization in OpenAI-Organization) are checked at write time: a value
// net/http refuses to send (control characters, non-ASCII) or a proxy
// refuses to accept (megabytes) would otherwise fail every call with an
// error that looks like an outage.

const maxHeaderValue = 1024

// headerSafe reports whether s is non-empty visible ASCII without spaces.
func headerSafe(s string) bool {
	if s == "" || len(s) > maxHeaderValue {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
