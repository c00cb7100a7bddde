package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

func sendCmd() *command {
	c := &command{
		name: "send", usage: "send [--source NAME] [--url URL] [--token T] FILE",
		summary: "Post a payload file (DVS JSON/XML/CSV, ADX, CHT export) to a running Tally.",
		example: "tally send --source cht --token $CHT_TOKEN examples/payloads/chw-2024-01.json",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		source := fs.String("source", "", "source to post to (POST /ingest/NAME); empty posts to /api/dataValueSets")
		ctype := fs.String("content-type", "", "Content-Type; by default from the file extension")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		file := fs.Arg(0)
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if *ctype == "" {
			*ctype = contentTypeFor(file)
		}
		path := "/api/dataValueSets"
		if *source != "" {
			path = "/ingest/" + *source
		}
		var raw json.RawMessage
		if _, err := api.do(ctx, "POST", path, *ctype, f, &raw); err != nil {
			return err
		}
		printJSON(env.stdout, raw)
		return nil
	}
	return c
}

func contentTypeFor(name string) string {
	n := strings.ToLower(strings.TrimSuffix(name, ".gz"))
	switch {
	case strings.HasSuffix(n, ".adx.xml"), strings.HasSuffix(n, ".adx"):
		return "application/adx+xml"
	case filepath.Ext(n) == ".xml":
		return "application/xml"
	case filepath.Ext(n) == ".csv":
		return "application/csv"
	default:
		return "application/json"
	}
}
