package backend

import (
	"regexp"
	"time"
)

// Limits and shapes that several paths share.

// maxKeyLifetime is the longest expires_in_seconds OpenAI accepts (one year):
// the cap on a lease's whole lifetime, a key's expiry and config durations.
const maxKeyLifetime = 31536000 * time.Second

// openaiIDPattern keeps ids to what OpenAI issues (proj_..., svc_acct_...,
// org-..., key_...), so an id taken from input, a lease or a record can never
// smuggle path segments into an upstream URL or a header.
var openaiIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
