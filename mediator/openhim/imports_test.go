package openhim_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces that the package and its fake depend only on the standard library and
// on themselves: the rest of the mediator imports them, never the reverse.
func TestImports(t *testing.T) {
	const self = "github.com/tally-hmis/tally/mediator/openhim"
	for _, dir := range []string{".", "openhimtest", "internal/semver"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				first, _, _ := strings.Cut(p, "/")
				if strings.Contains(first, ".") && p != self && !strings.HasPrefix(p, self+"/") {
					t.Errorf("%s imports %s: only the standard library and %s/... are allowed", f, p, self)
				}
			}
		}
	}
}
