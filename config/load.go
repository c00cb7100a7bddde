package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a config file, with the line it is on.
type Problem struct {
	File string
	Line int
	Path string // e.g. targets[0].url
	Msg  string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, p.Line)
	}
	if p.Path != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Path, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// Problems is every problem found; Load returns it as its error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return fmt.Sprintf("invalid configuration (%d problems):\n  %s", len(ps), strings.Join(lines, "\n  "))
}

// Load reads, expands, decodes, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data, os.Getenv)
}

var varRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// Parse is Load on bytes, with getenv supplying ${VAR} values. name is used in problems.
// When the file has problems, Parse returns them as Problems together with the partly
// decoded config, which is only fit for further validation.
func Parse(name string, data []byte, getenv func(string) string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{{File: name, Line: yamlErrLine(err), Msg: err.Error()}}
	}
	var probs Problems
	unset := map[int]bool{} // lines whose ${VAR} is not set
	expand(&root, func(line int, msg string) {
		probs = append(probs, Problem{File: name, Line: line, Msg: msg})
		unset[line] = true
	}, getenv)
	c := &Config{file: name, lines: map[string]int{}}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != 0 {
		probs = append(probs, checkKeys(name, doc, reflect.TypeOf(*c), "", c.lines)...)
		if err := doc.Decode(c); err != nil {
			probs = append(probs, decodeProblems(name, err)...)
		}
	}
	c.applyDefaults()
	for _, p := range c.validate() {
		// An unset variable is the mistake; that its value is then empty (no token, a URL
		// that is not one) follows from it and is not reported again.
		if !unset[p.Line] {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		// The config comes back with its problems so that a validator can check the
		// sections other packages own and report everything at once; it must not be run.
		return c, probs
	}
	return c, nil
}

// expand replaces ${VAR} with the environment's value and ${file:PATH} with the file's
// content (trailing newline trimmed), in scalar values only, so a secret never has to be
// written into the file and an expanded value can never change the YAML structure.
func expand(n *yaml.Node, report func(int, string), getenv func(string) string) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		n.Value = varRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := ref[2 : len(ref)-1]
			if path, ok := strings.CutPrefix(name, "file:"); ok {
				b, err := os.ReadFile(path)
				if err != nil {
					report(n.Line, fmt.Sprintf("${file:%s}: %v", path, errors.Unwrap(err)))
					return ""
				}
				return strings.TrimRight(string(b), "\r\n")
			}
			name, def, hasDef := strings.Cut(name, ":-")
			v := getenv(name)
			if v == "" {
				if hasDef {
					return def
				}
				report(n.Line, fmt.Sprintf("${%s} is not set in the environment", name))
			}
			return v
		})
		n.Tag = "" // let the expanded text resolve its own type (an int port, a bool)
		n.Style = 0
	}
	for _, c := range n.Content {
		expand(c, report, getenv)
	}
}

// checkKeys walks a mapping node against the struct type it decodes into, reporting unknown
// keys (a typo must not silently become a default) and recording the line of every path.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string, lines map[string]int) Problems {
	lines[path] = n.Line
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(yaml.Node{}) {
		return nil
	}
	var probs Problems
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag != "" && tag != "-" && f.IsExported() {
				fields[tag] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				probs = append(probs, Problem{File: file, Line: k.Line, Path: p, Msg: "unknown key" + suggest(k.Value, fields)})
				continue
			}
			lines[p] = k.Line
			probs = append(probs, checkKeys(file, v, ft, p, lines)...)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			probs = append(probs, checkKeys(file, item, t.Elem(), path+"["+strconv.Itoa(i)+"]", lines)...)
		}
	default:
		if msg := checkShape(n, t); msg != "" {
			probs = append(probs, Problem{File: file, Line: n.Line, Path: path, Msg: msg})
			neutralise(n)
		}
	}
	return probs
}

// checkShape says in a plain sentence what is wrong with a value of the wrong type or form
// (a word where a number goes, 1day for a duration, a list for a text), or "" when it
// decodes. Each such value is one problem: neutralise then blanks it, so that decoding goes
// on and the rest of its section is read and checked as written, with no follow-on errors.
func checkShape(n *yaml.Node, t reflect.Type) string {
	if n.Kind == yaml.AliasNode || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return ""
	}
	if t != reflect.TypeOf(Duration(0)) && t != reflect.TypeOf(ByteSize(0)) &&
		reflect.PointerTo(t).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) {
		return "" // a type of another package that reads itself (mapping's org_units: same)
	}
	switch t {
	case reflect.TypeOf(Duration(0)), reflect.TypeOf(time.Duration(0)):
		if n.Kind != yaml.ScalarNode {
			return "want a duration, e.g. 30s, 5m or 24h"
		}
		if _, err := parseDuration(n.Value); err != nil && (t == reflect.TypeOf(Duration(0)) || !isInt(n.Value)) {
			return err.Error()
		}
		return ""
	case reflect.TypeOf(ByteSize(0)):
		if n.Kind != yaml.ScalarNode {
			return "want a size, e.g. 64MiB"
		}
		if _, err := parseByteSize(n.Value); err != nil {
			return err.Error()
		}
		return ""
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			return "want a mapping of keys to values (key: value), not " + nodeKind(n)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return "want a list ([a, b] or one \"- item\" per line), not " + nodeKind(n)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return "want a text value, not " + nodeKind(n)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); n.Kind != yaml.ScalarNode || err != nil {
			return fmt.Sprintf("want a whole number, e.g. 4, not %s", nodeKind(n))
		}
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(n.Value, 64); n.Kind != yaml.ScalarNode || err != nil {
			return fmt.Sprintf("want a number, e.g. 0.5, not %s", nodeKind(n))
		}
	case reflect.Bool:
		switch strings.ToLower(n.Value) {
		case "true", "false", "yes", "no", "on", "off", "y", "n":
		default:
			return fmt.Sprintf("want true or false, not %s", nodeKind(n))
		}
		if n.Kind != yaml.ScalarNode {
			return fmt.Sprintf("want true or false, not %s", nodeKind(n))
		}
	}
	return ""
}

// isInt says whether s is a whole number (a time.Duration in nanoseconds, to yaml).
func isInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// nodeKind names what a node holds, for a problem's sentence.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// neutralise replaces a node of the wrong shape with the empty value of its type, which
// decodes as if the key were absent.
func neutralise(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	for _, n := range names {
		if editDistance(norm(n), norm(key)) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return "; known keys: " + strings.Join(names, ", ")
}

var lineInMsg = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := lineInMsg.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func decodeProblems(file string, err error) Problems {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var ps Problems
		for _, e := range te.Errors {
			ps = append(ps, Problem{File: file, Line: yamlErrLine(errors.New(e)), Msg: e})
		}
		return ps
	}
	return Problems{{File: file, Line: yamlErrLine(err), Msg: err.Error()}}
}

// Line returns the line of a config path such as "targets[0].url", or of its nearest
// ancestor that has one.
func (c *Config) Line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Problem builds a Problem at path in this config's file.
func (c *Config) Problem(path, format string, args ...any) Problem {
	return Problem{File: c.file, Line: c.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// DecodeSection decodes a section that another package owns (openhim, mappings, exchanges,
// notify) into v, reporting unknown keys and type errors with their lines.
func (c *Config) DecodeSection(n *yaml.Node, path string, v any) Problems {
	if n == nil || n.Kind == 0 {
		return nil
	}
	probs := checkKeys(c.file, n, reflect.TypeOf(v), path, c.lines)
	if err := n.Decode(v); err != nil {
		probs = append(probs, decodeProblems(c.file, err)...)
	}
	return probs
}

// editDistance is the Levenshtein distance, for suggesting the key a typo meant.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
