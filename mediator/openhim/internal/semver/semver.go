// Package semver checks and orders version strings the way the OpenHIM core does
// (node-semver's strict `valid` and `gt`), so the client and the fake core agree with it.
package semver

import (
	"regexp"
	"strconv"
	"strings"
)

// full is node-semver's strict grammar: an optional leading "v", three numeric parts
// without leading zeros, an optional pre-release and optional build metadata.
var full = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*))*))?` +
	`(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$`)

// maxLength is node-semver's MAX_LENGTH.
const maxLength = 256

// Version is a parsed semantic version. Build metadata is dropped: it never orders.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string
}

// Parse parses s as node-semver's valid() would (surrounding spaces are trimmed).
func Parse(s string) (Version, bool) {
	s = strings.TrimSpace(s)
	if len(s) > maxLength {
		return Version{}, false
	}
	m := full.FindStringSubmatch(s)
	if m == nil {
		return Version{}, false
	}
	var v Version
	var err error
	for i, p := range []*uint64{&v.Major, &v.Minor, &v.Patch} {
		// node-semver refuses numbers above Number.MAX_SAFE_INTEGER.
		if *p, err = strconv.ParseUint(m[i+1], 10, 53); err != nil {
			return Version{}, false
		}
	}
	if m[4] != "" {
		v.Pre = strings.Split(m[4], ".")
	}
	return v, true
}

// Valid reports whether s is a version the core accepts.
func Valid(s string) bool {
	_, ok := Parse(s)
	return ok
}

// Compare returns -1, 0 or +1 as a orders before, equal to or after b.
func Compare(a, b Version) int {
	for _, d := range [][2]uint64{{a.Major, b.Major}, {a.Minor, b.Minor}, {a.Patch, b.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a.Pre) == 0 && len(b.Pre) == 0:
		return 0
	case len(a.Pre) == 0:
		return 1 // a release orders after its pre-releases
	case len(b.Pre) == 0:
		return -1
	}
	for i := 0; i < len(a.Pre) && i < len(b.Pre); i++ {
		if c := compareIdent(a.Pre[i], b.Pre[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a.Pre) < len(b.Pre):
		return -1
	case len(a.Pre) > len(b.Pre):
		return 1
	}
	return 0
}

func compareIdent(a, b string) int {
	an, aErr := strconv.ParseUint(a, 10, 64)
	bn, bErr := strconv.ParseUint(b, 10, 64)
	switch {
	case aErr == nil && bErr == nil:
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return 0
	case aErr == nil:
		return -1 // numeric identifiers order before alphanumeric ones
	case bErr == nil:
		return 1
	}
	return strings.Compare(a, b)
}
