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
		name: "tx", usage: "tx list [--source NAME] [--limit N] | tx show ID",
		summary: "List transactions or show one with its per-target outcome.",
		example: "tally tx list --source cht --limit 20\ntally tx show 3f2a9c0d1e4b5a6f7081920a3b4c5d6e",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		source := fs.String("source", "", "only this source's transactions")
		limit := fs.Int("limit", 20, "at most this many")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		switch {
		case fs.NArg() == 1 && fs.Arg(0) == "list":
			q := url.Values{"limit": {strconv.Itoa(*limit)}}
			if *source != "" {
				q.Set("source", *source)
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
				} `json:"transactions"`
			}
			if err := json.Unmarshal(raw, &list); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSOURCE\tRECEIVED\tVALUES\tSTATUS")
			for _, t := range list.Transactions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", t.ID, t.Source, t.Received.Local().Format(time.DateTime), t.Values, t.Status)
			}
			return tw.Flush()
		case fs.NArg() == 2 && fs.Arg(0) == "show":
			var raw json.RawMessage
			if _, err := api.do(ctx, "GET", "/admin/v1/transactions/"+url.PathEscape(fs.Arg(1)), "", nil, &raw); err != nil {
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
