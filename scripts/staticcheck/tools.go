//go:build tools

// Package tools pins staticcheck for `make lint`: its version lives in go.mod and
// go.sum here, apart from the plugin's own dependencies, so `go build` of
// honnef.co/go/tools/cmd/staticcheck from this directory always builds the same
// release.
package tools

import _ "honnef.co/go/tools/cmd/staticcheck"
