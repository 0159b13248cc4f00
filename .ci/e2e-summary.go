//go:build ignore

// e2e-summary reads `go test -json` from stdin and prints what a plain
// `go test` run would (package results, the output of failed tests) plus the
// scenarios' FIGURES lines, then checks that every listed test ran and
// passed:
//
//	go test -json ... ./e2e/ | go run .ci/e2e-summary.go -want N
//
// N is the number of top-level tests `go test -list` finds in the package.
// It exits non-zero when the run failed, or when fewer than N top-level
// tests passed: a skipped or filtered-out test (E2E_FLAGS='-run X', a Skip)
// must not leave `make test` green having proved less than it says.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action string
	Test   string
	Output string
}

func main() {
	want := flag.Int("want", -1, "top-level tests the package lists")
	flag.Parse()
	if *want < 0 {
		fmt.Fprintln(os.Stderr, "e2e-summary: -want is required")
		os.Exit(2)
	}
	outputs := map[string][]string{} // top-level test -> its output, subtests included
	passed, failed, skipped := map[string]bool{}, map[string]bool{}, map[string]bool{}
	runFailed := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		var ev event
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Action == "" {
			fmt.Println(line) // not an event: a build error, say
			continue
		}
		top, _, sub := strings.Cut(ev.Test, "/")
		switch ev.Action {
		case "output", "build-output":
			if ev.Test == "" {
				fmt.Print(ev.Output)
				continue
			}
			outputs[top] = append(outputs[top], ev.Output)
			if strings.Contains(ev.Output, "FIGURES") {
				fmt.Print(strings.TrimLeft(ev.Output, " "))
			}
		case "pass":
			if ev.Test != "" && !sub {
				passed[top] = true
				delete(outputs, top)
			}
		case "skip":
			if ev.Test != "" && !sub {
				skipped[top] = true
				delete(outputs, top)
			}
		case "fail", "build-fail":
			if ev.Test == "" {
				runFailed = true
			} else if !sub {
				failed[top] = true
				fmt.Print(strings.Join(outputs[top], ""))
				delete(outputs, top)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e-summary: reading the test events:", err)
		os.Exit(1)
	}
	fmt.Printf("e2e: %d of %d listed tests passed, %d failed, %d skipped\n", len(passed), *want, len(failed), len(skipped))
	switch {
	case runFailed || len(failed) > 0:
		os.Exit(1)
	case *want == 0 || len(passed) < *want:
		if len(skipped) > 0 {
			fmt.Printf("e2e: skipped: %s\n", strings.Join(keys(skipped), " "))
		}
		fmt.Fprintf(os.Stderr, "e2e: FAIL: only %d of the %d tests the package lists ran and passed; E2E_FLAGS=%q or a Skip cut the run short (run a subset with go test -tags e2e -run ... ./e2e/ instead)\n",
			len(passed), *want, os.Getenv("E2E_FLAGS"))
		os.Exit(1)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
