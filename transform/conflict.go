package transform

import (
	"maps"
	"slices"
	"strings"
)

// ImportConflict is one entry of the conflicts of a DHIS2 ImportSummary, with DHIS2's
// JSON names (spec dhis2.md §2.3): Value is the message; Objects maps schema names
// (dataElement, period, organisationUnit, …) to the ids involved, and Object is the
// first of them; Indexes are the 0-based positions in the payload of the values that
// share the conflict. A conflict without an error code is DHIS2's older two-field form
// {object, value}.
type ImportConflict struct {
	Object    string            `json:"object,omitempty"`
	Objects   map[string]string `json:"objects,omitempty"`
	Value     string            `json:"value"`
	ErrorCode string            `json:"errorCode,omitempty"`
	Property  string            `json:"property,omitempty"`
	Indexes   []int             `json:"indexes,omitempty"`
}

// DHIS2 returns the conflict DHIS2 would report for e: its Conflict with e's index, or,
// for a problem DHIS2 has no conflict for, the older {object, value} form naming the
// field and what was expected.
func (e *InputError) DHIS2() ImportConflict {
	var c ImportConflict
	if e.Conflict != nil {
		c = *e.Conflict
	} else {
		c = ImportConflict{Object: e.Field, Value: e.plain()}
		if c.Object == "" {
			c.Object = "dataValue"
		}
	}
	c.Indexes = nil
	if e.Index >= 0 {
		c.Indexes = []int{e.Index}
	}
	return c
}

// plain is the error's message without its place, for a conflict that carries the
// index separately.
func (e *InputError) plain() string {
	c := *e
	c.Pos, c.Index = Pos{}, -1
	return c.Error()
}

// MergeConflicts turns value problems into DHIS2's conflict list: conflicts with the
// same error code and objects (or, without a code, the same object and message) become
// one entry whose Indexes accumulate, as ImportConflict.mergeWith does in DHIS2 2.37+
// (grouping key errorCode:objects, or object:message; spec dhis2.md §2.3). Entries keep
// the order of their first occurrence.
func MergeConflicts(errs []*InputError) []ImportConflict {
	var out []ImportConflict
	at := make(map[string]int, len(errs))
	for _, e := range errs {
		c := e.DHIS2()
		k := c.groupingKey()
		if i, ok := at[k]; ok {
			out[i].Indexes = append(out[i].Indexes, c.Indexes...)
			continue
		}
		at[k] = len(out)
		out = append(out, c)
	}
	return out
}

// groupingKey is DHIS2's ImportConflict grouping key: errorCode and the objects' ids,
// or object and message for a conflict without a code. The objects are taken in key
// order, which is deterministic whatever the map's.
func (c *ImportConflict) groupingKey() string {
	if c.ErrorCode == "" {
		return "\x00" + c.Object + ":" + c.Value
	}
	var b strings.Builder
	b.WriteString(c.ErrorCode)
	for _, k := range slices.Sorted(maps.Keys(c.Objects)) {
		b.WriteByte(':')
		b.WriteString(c.Objects[k])
	}
	return b.String()
}
