package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tally-hmis/tally/mediator/txlog"
)

// txStatuses are the values tx list --status takes (txlog's statuses).
func txStatuses() []string {
	return []string{txlog.TxAccepted, txlog.TxDelivered, txlog.TxPartiallyDelivered, txlog.TxFailed}
}

func txCmd() *command {
	c := &command{
		name: "tx", usage: "tx list [--source NAME] [--status S] [--since T] [--until T] [--limit N] [-o table|json|yaml] | tx show ID [--values [--page N] [--page-size N]] [-o table|json|yaml]",
		summary: "List transactions, or show one: a summary first (per-target outcome, first conflicts, events); --values pages through its batches' deliveries and conflicts.",
		example: "tally tx list --source cht --limit 20\ntally tx list --status \"partially delivered\" --since 24h\ntally tx show 3f2a9c0d1e4b5a6f7081920a3b4c5d6e\ntally tx show 3f2a9c0d1e4b5a6f7081920a3b4c5d6e --values --page 2\ntally tx show 3f2a9c0d1e4b5a6f7081920a3b4c5d6e -o json",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		source := fs.String("source", "", "only this source's transactions")
		status := fs.String("status", "", `only this status: accepted, delivered, "partially delivered" or failed`)
		since := fs.String("since", "", "received at or after: RFC 3339 time, date, or duration ago (24h)")
		until := fs.String("until", "", "received before: RFC 3339 time, date, or duration ago")
		limit := fs.Int("limit", 20, "at most this many")
		values := fs.Bool("values", false, "show: list the deliveries of each batch and their conflicts, a page at a time")
		page := fs.Int("page", 1, "show --values: the page to list (from 1)")
		pageSize := fs.Int("page-size", 50, "show --values: deliveries per page")
		out := addOutputFlag(fs)
		args, err := parseInterspersed(c, env, fs, args)
		if err != nil {
			return err
		}
		if err := out.check(); err != nil {
			return err
		}
		switch {
		case len(args) == 1 && args[0] == "list":
			if *status != "" && !slices.Contains(txStatuses(), *status) {
				return fmt.Errorf("--status %q: want one of %s", *status, strings.Join(txStatuses(), ", "))
			}
			if *limit < 1 {
				return fmt.Errorf("--limit %d: want 1 or more", *limit)
			}
			q := url.Values{"limit": {strconv.Itoa(*limit)}}
			for k, v := range map[string]string{"source": *source, "status": *status, "since": *since, "until": *until} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var raw json.RawMessage
			if _, err := api.do(ctx, "GET", "/admin/v1/transactions?"+q.Encode(), "", nil, &raw); err != nil {
				return err
			}
			if done, err := out.print(env.stdout, raw); done || err != nil {
				return err
			}
			return printTxList(env.stdout, raw)
		case len(args) == 2 && args[0] == "show":
			if *page < 1 || *pageSize < 1 {
				return fmt.Errorf("--page %d --page-size %d: want 1 or more", *page, *pageSize)
			}
			// -o json|yaml is the whole transaction; the table asks for one page of its
			// delivery records (none for the summary), never all of them.
			path := "/admin/v1/transactions/" + url.PathEscape(args[1])
			switch {
			case *values:
				path += fmt.Sprintf("?offset=%d&limit=%d", (*page-1)**pageSize, *pageSize)
			case out.table():
				path += "?limit=0"
			}
			var raw json.RawMessage
			if _, err := api.do(ctx, "GET", path, "", nil, &raw); err != nil {
				return err
			}
			if done, err := out.print(env.stdout, raw); done || err != nil {
				return err
			}
			var v txPageView
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("decoding the transaction: %w", err)
			}
			if *values {
				return printTxDeliveries(env.stdout, &v, *page, *pageSize)
			}
			return printTxSummary(env.stdout, &v)
		}
		fs.Usage()
		return errUsage
	}
	return c
}

func printTxList(w io.Writer, raw []byte) error {
	var list struct {
		Transactions []*txlog.TxView `json:"transactions"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tRECEIVED\tVALUES\tSTATUS\tREJECTED\tATTEMPTS")
	for _, t := range list.Transactions {
		rejected, attempts := 0, 0
		for _, tg := range t.Targets {
			rejected += tg.Rejected
			attempts += tg.Attempts
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\n", t.ID, t.Source, t.Received.Local().Format(time.DateTime),
			t.Values, t.Status, rejected, attempts)
	}
	return tw.Flush()
}

// txPageView is a transaction with one page of its delivery records and their total.
type txPageView struct {
	txlog.TxView
	DeliveriesTotal int `json:"deliveriesTotal"`
}

// summaryConflicts is how many conflicts per target the summary quotes.
const summaryConflicts = 5

// printTxSummary prints what an operator asks first: what the transaction was, where its
// values went, the first reasons they were refused and what was done since; the
// per-batch records (which run to hundreds of thousands of lines for a large payload) only
// with --values.
func printTxSummary(w io.Writer, v *txPageView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Transaction:\t%s\n", v.ID)
	fmt.Fprintf(tw, "Source:\t%s (%s)\n", v.Source, v.Format)
	fmt.Fprintf(tw, "Received:\t%s\n", v.Received.Local().Format(time.DateTime))
	fmt.Fprintf(tw, "Values:\t%d in %d batches\n", v.Values, v.Batches)
	fmt.Fprintf(tw, "Status:\t%s\n", v.Status)
	if v.Refused > 0 {
		fmt.Fprintf(tw, "Refused at ingest:\t%d values\n", v.Refused)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tBATCHES\tVALUES\tIMPORTED\tUPDATED\tIGNORED\tDELETED\tREJECTED\tUNMAPPED\tATTEMPTS\tLAST ERROR")
	for _, t := range v.Targets {
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", t.Target, t.Done, t.Batches, t.Values,
			t.Counts.Imported, t.Counts.Updated, t.Counts.Ignored, t.Counts.Deleted, t.Rejected, t.Unmapped, t.Attempts,
			clip(t.LastError, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range v.Targets {
		if len(t.Conflicts) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nConflicts at %s (first %d of %d):\n", t.Target, min(summaryConflicts, len(t.Conflicts)), len(t.Conflicts))
		for _, c := range t.Conflicts[:min(summaryConflicts, len(t.Conflicts))] {
			fmt.Fprintf(w, "  %s\n", conflictLine(c))
		}
	}
	if len(v.Events) > 0 {
		fmt.Fprintln(w, "\nEvents:")
		for _, e := range v.Events {
			fmt.Fprintf(w, "  %s  %s %d values at %s (dead letter %d)\n", e.Time.Local().Format(time.DateTime), e.Kind, e.Values, e.Target, e.DLQSeq)
		}
	}
	if n := v.DeliveriesTotal; n > 0 {
		fmt.Fprintf(w, "\n%d delivery records: tally tx show %s --values (or -o json for everything)\n", n, v.ID)
	}
	return nil
}

// printTxDeliveries prints one page of the per-batch delivery records (as the API paged
// them) with their conflicts.
func printTxDeliveries(w io.Writer, v *txPageView, page, size int) error {
	total := v.DeliveriesTotal
	pages := max(1, (total+size-1)/size)
	if page > pages {
		return fmt.Errorf("--page %d: the transaction has %d delivery records, %d pages of %d", page, total, pages, size)
	}
	part := v.Deliveries
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tBATCH\tREPLAY\tOUTCOME\tVALUES\tIMPORTED\tUPDATED\tIGNORED\tREJECTED\tATTEMPTS\tLAST ERROR")
	for _, d := range part {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", d.Target, d.Seq, d.Replay, d.Outcome, d.Values,
			d.Counts.Imported, d.Counts.Updated, d.Counts.Ignored, d.Rejected, d.Attempts, clip(d.LastError, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range part {
		for _, c := range d.Conflicts {
			fmt.Fprintf(w, "%s batch %d: %s\n", d.Target, d.Seq, conflictLine(c))
		}
	}
	fmt.Fprintf(w, "page %d of %d (%d delivery records)", page, pages, total)
	if page < pages {
		fmt.Fprintf(w, "; next: --page %d", page+1)
	}
	fmt.Fprintln(w)
	return nil
}

func conflictLine(c txlog.Conflict) string {
	head := strings.TrimSpace(c.ErrorCode + " " + c.Object)
	if head != "" {
		head += ": "
	}
	s := head + c.Message
	if len(c.Indexes) > 0 {
		s += fmt.Sprintf(" (values %s)", joinInts(c.Indexes, 10))
	}
	return s
}

func joinInts(xs []int, n int) string {
	parts := make([]string, 0, min(n, len(xs)))
	for _, x := range xs[:min(n, len(xs))] {
		parts = append(parts, strconv.Itoa(x))
	}
	if len(xs) > n {
		parts = append(parts, fmt.Sprintf("… %d more", len(xs)-n))
	}
	return strings.Join(parts, ", ")
}
