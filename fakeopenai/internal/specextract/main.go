// Command specextract copies the Admin API paths the fake serves, and every
// component they reference (transitively), out of OpenAI's openapi.yaml into
// a small standalone OpenAPI document, which the fake embeds as its contract.
//
// It works on the text, not a parsed tree, so the copy keeps the original's
// wording and layout byte for byte. It relies on the published file's layout:
// top-level keys at column 0, path items at indent 2 under "paths:", and
// component entries at indent 4 under "components:" sections at indent 2.
//
//	go run ./fakeopenai/internal/specextract -in openapi.yaml -out fakeopenai/openapi/openai-admin.yaml
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// paths are the paths the fake implements: the Admin API ones and the two
// inference calls a test makes with an issued key.
var paths = []string{
	"/organization/admin_api_keys",
	"/organization/admin_api_keys/{key_id}",
	"/organization/projects/{project_id}",
	"/organization/projects/{project_id}/service_accounts",
	"/organization/projects/{project_id}/service_accounts/{service_account_id}",
	"/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys",
	"/organization/projects/{project_id}/api_keys",
	"/organization/projects/{project_id}/api_keys/{api_key_id}",
	"/models",
}

// alwaysComponents are kept whether referenced or not: the error envelope is
// checked for every non-2xx answer, though the paths do not declare errors.
var alwaysComponents = []string{"schemas/ErrorResponse", "securitySchemes/ApiKeyAuth", "securitySchemes/AdminApiKeyAuth"}

var refRE = regexp.MustCompile(`#/components/([A-Za-z]+)/([A-Za-z0-9_.\-]+)`)

func main() {
	in := flag.String("in", "", "OpenAI's openapi.yaml")
	out := flag.String("out", "", "extract to write")
	source := flag.String("source", "openai/openai-openapi commit f85dbe2", "provenance noted in the header comment")
	flag.Parse()
	if *in == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*in, *out, *source); err != nil {
		fmt.Fprintln(os.Stderr, "specextract:", err)
		os.Exit(1)
	}
}

// block is a run of lines belonging to one key.
type block struct {
	key   string
	lines []string
}

// split groups lines into blocks that start at lines indented by exactly
// indent spaces (continuation lines are more indented or blank).
func split(lines []string, indent int) []block {
	prefix := strings.Repeat(" ", indent)
	var out []block
	for _, l := range lines {
		isKey := strings.HasPrefix(l, prefix) && len(l) > indent && l[indent] != ' ' && l[indent] != '-' && l[indent] != '#'
		if isKey {
			key, _, _ := strings.Cut(strings.TrimSpace(l), ":")
			key = strings.Trim(key, `"'`)
			out = append(out, block{key: key, lines: []string{l}})
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].lines = append(out[len(out)-1].lines, l)
		}
	}
	return out
}

func run(in, out, source string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return err
	}

	top := map[string]block{}
	for _, b := range split(lines, 0) {
		top[b.key] = b
	}
	for _, k := range []string{"openapi", "info", "servers", "security", "paths", "components"} {
		if _, ok := top[k]; !ok {
			return fmt.Errorf("no top-level %q", k)
		}
	}

	pathItems := map[string]block{}
	for _, b := range split(top["paths"].lines[1:], 2) {
		pathItems[b.key] = b
	}
	comps := map[string]block{} // "section/name"
	var sections []string
	for _, sec := range split(top["components"].lines[1:], 2) {
		sections = append(sections, sec.key)
		for _, b := range split(sec.lines[1:], 4) {
			comps[sec.key+"/"+b.key] = b
		}
	}

	// Walk references from the chosen paths to a fixed point.
	need := map[string]bool{}
	var queue []string
	want := func(text []string) {
		for _, l := range text {
			for _, m := range refRE.FindAllStringSubmatch(l, -1) {
				id := m[1] + "/" + m[2]
				if !need[id] {
					need[id] = true
					queue = append(queue, id)
				}
			}
		}
	}
	var body []string
	body = append(body, "paths:")
	for _, p := range paths {
		b, ok := pathItems[p]
		if !ok {
			return fmt.Errorf("path %s not in %s", p, in)
		}
		body = append(body, b.lines...)
		want(b.lines)
	}
	for _, id := range alwaysComponents {
		if !need[id] {
			need[id] = true
			queue = append(queue, id)
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		b, ok := comps[id]
		if !ok {
			return fmt.Errorf("component %s referenced but not defined", id)
		}
		want(b.lines)
	}

	body = append(body, "components:")
	for _, sec := range sections {
		var ids []string
		for id := range need {
			if strings.HasPrefix(id, sec+"/") {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		sort.Strings(ids)
		body = append(body, "  "+sec+":")
		for _, id := range ids {
			body = append(body, comps[id].lines...)
		}
	}

	var doc []string
	doc = append(doc,
		"# Extract of OpenAI's OpenAPI description ("+source+"), MIT licence: see LICENSE.",
		"# Only the paths the fake serves (Admin API, GET /models) and the components they reference.",
		"# Generated by fakeopenai/internal/specextract; do not edit by hand.")
	for _, k := range []string{"openapi", "info", "servers", "security"} {
		doc = append(doc, trimBlank(top[k].lines)...)
	}
	doc = append(doc, trimBlank(body)...)
	return os.WriteFile(out, []byte(strings.Join(doc, "\n")+"\n"), 0o644)
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
