package backend

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// Checks of config values written by operators.
//
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

// validateBaseURL accepts https anywhere and http only on loopback, where a
// local proxy or test double cannot be sniffed on the wire.
func validateBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", errors.New("must be an absolute URL with a host, e.g. https://api.openai.com/v1")
	}
	if u.User != nil {
		return "", errors.New("must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must not have a query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return "", errors.New("must use https unless the host is loopback")
		}
	default:
		return "", errors.New("scheme must be https")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
