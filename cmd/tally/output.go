package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// outputFlag is the one output flag of every read command: -o table|json|yaml (table by
// default). JSON is the API's answer as it came, indented: its field names are the API's
// contract, stable for scripts. YAML is the same document. --json stays as an alias of
// -o json for scripts written before -o.
type outputFlag struct {
	format string
	json   bool
}

// outputFormats are the values -o takes.
func outputFormats() []string { return []string{"table", "json", "yaml"} }

func addOutputFlag(fs *flag.FlagSet) *outputFlag {
	o := &outputFlag{}
	fs.StringVar(&o.format, "o", "table", "output format: table, json or yaml")
	fs.StringVar(&o.format, "output", "table", "output format: table, json or yaml (same as -o)")
	fs.BoolVar(&o.json, "json", false, "print JSON (same as -o json)")
	return o
}

// check refuses an unknown format; call it right after parsing.
func (o *outputFlag) check() error {
	if o.json {
		o.format = "json"
	}
	for _, f := range outputFormats() {
		if o.format == f {
			return nil
		}
	}
	return fmt.Errorf("-o %q: want table, json or yaml", o.format)
}

func (o *outputFlag) table() bool { return o.format == "table" }

// print writes an API answer as JSON or YAML; with -o table it returns false and writes
// nothing, for the caller to draw its table.
func (o *outputFlag) print(w io.Writer, raw []byte) (bool, error) {
	switch o.format {
	case "json":
		printJSON(w, raw)
		return true, nil
	case "yaml":
		return true, printYAML(w, raw)
	}
	return false, nil
}

// printYAML re-encodes a JSON document as YAML, keys in the JSON's order.
func printYAML(w io.Writer, raw []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil { // JSON is YAML: this keeps key order
		return fmt.Errorf("converting the answer to YAML: %w", err)
	}
	styleBlock(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("writing YAML: %w", err)
	}
	return enc.Close()
}

// styleBlock turns JSON's flow style and quoted keys and strings into YAML's plain block
// style; the encoder quotes what must be quoted ("true" as a string, "2024").
func styleBlock(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		styleBlock(c)
	}
}

// printValue writes a Go value in the chosen format (json or yaml) through its JSON form.
func (o *outputFlag) printValue(w io.Writer, v any) (bool, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	return o.print(w, raw)
}
