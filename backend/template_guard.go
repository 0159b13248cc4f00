package backend

import (
	"fmt"
	"strconv"
	"strings"
	"text/template/parse"
)

// A name_template runs on every issue, inside the plugin process, and Go
// templates are a small language: {{ range 1000000000 }}, {{ random 1e12 }},
// recursive {{ template }} or nested {{ replace "" ... }} each exhaust memory
// or CPU from a single role write. checkTemplateBounds keeps templates to
// the shape of a name: bounded size, no loops or sub-templates, small
// numbers, a handful of calls, and only functions whose output is bounded.
const (
	maxTemplateLength = 256
	maxTemplateNumber = 256
	maxTemplateCalls  = 16
	maxTemplateGrowth = 2 // replace calls: each can multiply the length
	// maxTemplateInput caps each variable before rendering, so a long
	// display name cannot be amplified by replace.
	maxTemplateInput = 256
)

// templateFuncs are the functions a name_template may call: the sdk
// template's own, plus comparisons and logic for {{ if }}. Everything else
// (printf and friends, call, index, slice) is refused at parse time.
var templateFuncs = func() map[string]any {
	m := map[string]any{}
	for _, name := range []string{
		"random", "truncate", "truncate_sha256", "uppercase", "lowercase", "replace", "sha256", "base64",
		"unix_time", "unix_time_millis", "timestamp", "uuid",
		"and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len",
	} {
		m[name] = func() {} // parse only checks that the name is defined
	}
	return m
}()

func checkTemplateBounds(raw string) error {
	if len(raw) > maxTemplateLength {
		return fmt.Errorf("must be at most %d characters", maxTemplateLength)
	}
	trees, err := parse.Parse("name_template", raw, "", "", templateFuncs)
	if err != nil {
		return err
	}
	if len(trees) != 1 {
		return fmt.Errorf("must not define sub-templates")
	}
	var w templateWalker
	for _, t := range trees {
		w.node(t.Root)
	}
	switch {
	case w.err != nil:
		return w.err
	case w.calls > maxTemplateCalls:
		return fmt.Errorf("calls %d functions; at most %d", w.calls, maxTemplateCalls)
	case w.growth > maxTemplateGrowth:
		return fmt.Errorf("calls replace %d times; at most %d", w.growth, maxTemplateGrowth)
	}
	return nil
}

type templateWalker struct {
	calls, growth int
	err           error
}

func (w *templateWalker) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
}

func (w *templateWalker) node(n parse.Node) {
	if n == nil || w.err != nil {
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			w.node(c)
		}
	case *parse.ActionNode:
		w.node(n.Pipe)
	case *parse.IfNode:
		w.node(n.Pipe)
		w.node(n.List)
		w.node(n.ElseList)
	case *parse.WithNode:
		w.node(n.Pipe)
		w.node(n.List)
		w.node(n.ElseList)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			w.node(c)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			w.node(a)
		}
	case *parse.ChainNode:
		w.node(n.Node)
		if len(n.Field) > 0 {
			w.fail("unknown variable %s: a name_template may use %s", n.String(), nameTemplateVariables)
		}
	case *parse.IdentifierNode:
		w.calls++
		if n.Ident == "replace" {
			w.growth++
		}
	case *parse.NumberNode:
		v, err := strconv.ParseFloat(n.Text, 64)
		if err != nil || v < -maxTemplateNumber || v > maxTemplateNumber {
			w.fail("number %s is out of range (at most %d)", n.Text, maxTemplateNumber)
		}
	case *parse.FieldNode:
		w.fields(n.Ident)
	case *parse.VariableNode:
		// $ is the data itself; $x is a variable bound by with, a string.
		if len(n.Ident) > 1 {
			if n.Ident[0] == "$" {
				w.fields(n.Ident[1:])
			} else {
				w.fail("unknown variable %s: a name_template may use %s", n.String(), nameTemplateVariables)
			}
		}
	case *parse.StringNode, *parse.TextNode, *parse.DotNode,
		*parse.BoolNode, *parse.NilNode, *parse.CommentNode:
	case *parse.RangeNode:
		w.fail("must not use range")
	case *parse.TemplateNode:
		w.fail("must not use template or block")
	default:
		w.fail("must not use %T", n)
	}
}

// fields checks a field chain such as .RoleName against nameTemplateData,
// so a misspelt variable is refused with the list of valid ones rather than
// an error naming the engine's internal Go type.
func (w *templateWalker) fields(ident []string) {
	if len(ident) == 1 {
		switch ident[0] {
		case "RoleName", "DisplayName", "MountAccessor":
			return
		}
	}
	w.fail("unknown variable .%s: a name_template may use %s", strings.Join(ident, "."), nameTemplateVariables)
}

// boundInput truncates a template variable to maxTemplateInput bytes,
// backing off to a rune boundary.
func boundInput(s string) string {
	if len(s) <= maxTemplateInput {
		return s
	}
	cut := maxTemplateInput
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
