package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// printList prints what a control subcommand fetched: indented JSON with
// -json, else a table (header, one row an item, then a line counting the
// items as noun). The subcommands differ only in their columns.
func printList[T any](out io.Writer, items []T, asJSON bool, header, noun string, row func(io.Writer, T)) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		row(tw, it)
	}
	fmt.Fprintf(tw, "%d %s\n", len(items), noun)
	return tw.Flush()
}
