package console

import (
	"context"
	"strings"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/metadata"
)

// names finds the name of a target's data element, org unit or category option combo by
// UID or code, whichever scheme the value is written in, from the metadata cache.
type names struct {
	de, ou, coc map[string]string
}

// namesOf reads a target's names; without metadata (none cached, target unreachable) every
// lookup answers "", and the pages show codes alone.
func (c *Console) namesOf(ctx context.Context, target string) *names {
	n := &names{de: map[string]string{}, ou: map[string]string{}, coc: map[string]string{}}
	if c.cfg.Metadata == nil {
		return n
	}
	md, err := c.cfg.Metadata.Metadata(ctx, target)
	if err != nil || md == nil {
		c.cfg.Log.Debug("console: no names for target", "target", target, "err", err)
		return n
	}
	for _, d := range md.DataElements {
		n.add(n.de, d.Object)
	}
	for _, o := range md.OrgUnits {
		n.add(n.ou, o.Object)
	}
	for _, cc := range md.CategoryOptionCombos {
		n.add(n.coc, cc.Object)
	}
	return n
}

func (n *names) add(m map[string]string, o metadata.Object) {
	m[o.ID] = o.Name
	if o.Code != "" {
		m[o.Code] = o.Name
	}
}

// namedValue is a data value with the names of its identifiers beside them.
type namedValue struct {
	transform.DataValue
	DEName, OUName, COCName string
}

func (n *names) values(vs []transform.DataValue) []namedValue {
	out := make([]namedValue, len(vs))
	for i, v := range vs {
		out[i] = namedValue{DataValue: v, DEName: n.de[v.DataElement], OUName: n.ou[v.OrgUnit], COCName: n.coc[v.CategoryOptionCombo]}
	}
	return out
}

// key is a stored value's key with names beside its codes.
type namedKey struct {
	transform.Key
	DEName, OUName, COCName string
}

func (n *names) key(k transform.Key) namedKey {
	return namedKey{Key: k, DEName: n.de[k.DataElement], OUName: n.ou[k.OrgUnit], COCName: n.coc[k.CategoryOptionCombo]}
}

// aliases are the identifiers that name one object for a target: what the person typed,
// and the UID and code of every object of that kind whose UID, code or name it is.
type aliases map[string]bool

func (a aliases) has(id string) bool { return a == nil || a[id] }

// aliasesOf resolves what was typed for a data element ("de") or org unit ("ou") in the
// metadata of the targets given; empty input matches everything (nil).
func (c *Console) aliasesOf(ctx context.Context, targets []string, kind, typed string) aliases {
	typed = strings.TrimSpace(typed)
	if typed == "" {
		return nil
	}
	out := aliases{typed: true}
	if c.cfg.Metadata == nil {
		return out
	}
	for _, t := range targets {
		md, err := c.cfg.Metadata.Metadata(ctx, t)
		if err != nil || md == nil {
			continue
		}
		var objs []metadata.Object
		switch kind {
		case "de":
			for _, d := range md.DataElements {
				objs = append(objs, d.Object)
			}
		case "ou":
			for _, o := range md.OrgUnits {
				objs = append(objs, o.Object)
			}
		}
		for _, o := range objs {
			if o.ID == typed || o.Code == typed || strings.EqualFold(o.Name, typed) {
				out[o.ID] = true
				if o.Code != "" {
					out[o.Code] = true
				}
			}
		}
	}
	return out
}
