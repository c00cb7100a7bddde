package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"
)

func txCmd() *command {
	c := &command{
		name: "tx", usage: "tx list [--source NAME] [--status S] [--since T] [--until T] [--limit N] | tx show ID",
		summary: "List transactions or show one with its per-target outcome.",
		example: "tally tx list --source cht --limit 20\ntally tx list --status \"partially delivered\" --since 24h\ntally tx show 3f2a9c0d1e4b5a6f7081920a3b4c5d6e",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		source := fs.String("source", "", "only this source's transactions")
		status := fs.String("status", "", `only this status: accepted, delivered, "partially delivered" or failed`)
		since := fs.String("since", "", "received at or after: RFC 3339 time, date, or duration ago (24h)")
		until := fs.String("until", "", "received before: RFC 3339 time, date, or duration ago")
		limit := fs.Int("limit", 20, "at most this many")
		asJSON := fs.Bool("json", false, "print JSON")
		args, err := parseInterspersed(c, env, fs, args)
		if err != nil {
			return err
		}
		switch {
		case len(args) == 1 && args[0] == "list":
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
			if *asJSON {
				printJSON(env.stdout, raw)
				return nil
			}
			var list struct {
				Transactions []struct {
					ID       string    `json:"id"`
					Source   string    `json:"source"`
					Received time.Time `json:"received"`
					Values   int       `json:"values"`
					Status   string    `json:"status"`
					Targets  []struct {
						Target   string `json:"target"`
						Rejected int    `json:"rejected"`
						Attempts int    `json:"attempts"`
					} `json:"targets"`
				} `json:"transactions"`
			}
			if err := json.Unmarshal(raw, &list); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
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
		case len(args) == 2 && args[0] == "show":
			var raw json.RawMessage
			if _, err := api.do(ctx, "GET", "/admin/v1/transactions/"+url.PathEscape(args[1]), "", nil, &raw); err != nil {
				return err
			}
			printJSON(env.stdout, raw)
			return nil
		}
		fs.Usage()
		return errUsage
	}
	return c
}
