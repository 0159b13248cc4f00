package harness

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Figures prints a scenario's numbers in one greppable line ("FIGURES name: k=v ..."),
// which make test-e2e repeats in its summary; durations print in seconds.
func Figures(t testing.TB, scenario string, kv ...any) {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if d, ok := v.(time.Duration); ok {
			v = fmt.Sprintf("%.1fs", d.Seconds())
		}
		fmt.Fprintf(&b, " %s=%v", kv[i], v)
	}
	t.Logf("FIGURES %s:%s", scenario, b.String())
}
