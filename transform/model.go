package transform

import (
	"fmt"
	"strings"
	"time"
)

// IDScheme names how an identifier is written: UID (DHIS2's 11-character ids), CODE, NAME,
// or ATTRIBUTE:<attribute uid> for a custom attribute value. The empty scheme means "not
// stated", which DHIS2 reads as UID (ADX: CODE).
type IDScheme string

// The id schemes DHIS2 accepts for aggregate data.
const (
	SchemeUID  IDScheme = "UID"
	SchemeCode IDScheme = "CODE"
	SchemeName IDScheme = "NAME"
)

// ParseIDScheme reads a scheme as DHIS2 does: case-insensitive, with ATTRIBUTE:<uid> keeping
// the attribute uid as written. It reports an error naming the value for anything else.
func ParseIDScheme(s string) (IDScheme, error) {
	if s == "" {
		return "", nil
	}
	up := strings.ToUpper(s)
	switch up {
	case "UID", "CODE", "NAME", "ID", "UUID":
		return IDScheme(up), nil
	}
	if strings.HasPrefix(up, "ATTRIBUTE:") && len(s) > len("ATTRIBUTE:") {
		return IDScheme("ATTRIBUTE:" + s[len("ATTRIBUTE:"):]), nil
	}
	return "", fmt.Errorf("id scheme %q: want UID, CODE, NAME or ATTRIBUTE:<uid>", s)
}

// Attribute returns the attribute uid of an ATTRIBUTE:<uid> scheme.
func (s IDScheme) Attribute() (string, bool) {
	if strings.HasPrefix(string(s), "ATTRIBUTE:") {
		return string(s)[len("ATTRIBUTE:"):], true
	}
	return "", false
}

// Or returns s, or fallback when s is unset.
func (s IDScheme) Or(fallback IDScheme) IDScheme {
	if s == "" {
		return fallback
	}
	return s
}

// IDSchemes records, per field, the scheme the identifiers of a batch are written in, so that
// no stage has to guess. Empty fields fall back to IDScheme (and then to UID).
type IDSchemes struct {
	IDScheme             IDScheme `json:"idScheme,omitempty"`
	DataElement          IDScheme `json:"dataElementIdScheme,omitempty"`
	OrgUnit              IDScheme `json:"orgUnitIdScheme,omitempty"`
	CategoryOptionCombo  IDScheme `json:"categoryOptionComboIdScheme,omitempty"`
	AttributeOptionCombo IDScheme `json:"attributeOptionComboIdScheme,omitempty"`
	DataSet              IDScheme `json:"dataSetIdScheme,omitempty"`
	Category             IDScheme `json:"categoryIdScheme,omitempty"`
	CategoryOption       IDScheme `json:"categoryOptionIdScheme,omitempty"`
}

// Overlay returns s with every scheme that o sets replacing the one in s. It implements
// DHIS2's precedence: a payload's schemes win over the query's.
func (s IDSchemes) Overlay(o IDSchemes) IDSchemes {
	pick := func(a, b IDScheme) IDScheme { return b.Or(a) }
	return IDSchemes{
		IDScheme:             pick(s.IDScheme, o.IDScheme),
		DataElement:          pick(s.DataElement, o.DataElement),
		OrgUnit:              pick(s.OrgUnit, o.OrgUnit),
		CategoryOptionCombo:  pick(s.CategoryOptionCombo, o.CategoryOptionCombo),
		AttributeOptionCombo: pick(s.AttributeOptionCombo, o.AttributeOptionCombo),
		DataSet:              pick(s.DataSet, o.DataSet),
		Category:             pick(s.Category, o.Category),
		CategoryOption:       pick(s.CategoryOption, o.CategoryOption),
	}
}

// Resolved returns the schemes with each unset field filled from IDScheme, then from def.
// AttributeOptionCombo falls back to CategoryOptionCombo first, as DHIS2 looks both up with
// the category option combo scheme.
func (s IDSchemes) Resolved(def IDScheme) IDSchemes {
	base := s.IDScheme.Or(def)
	coc := s.CategoryOptionCombo.Or(base)
	return IDSchemes{
		IDScheme:             base,
		DataElement:          s.DataElement.Or(base),
		OrgUnit:              s.OrgUnit.Or(base),
		CategoryOptionCombo:  coc,
		AttributeOptionCombo: s.AttributeOptionCombo.Or(coc),
		DataSet:              s.DataSet.Or(base),
		Category:             s.Category.Or(base),
		CategoryOption:       s.CategoryOption.Or(base),
	}
}

// IsZero reports whether no scheme is set.
func (s IDSchemes) IsZero() bool { return s == IDSchemes{} }

// CategoryOption is one category → option pair of an ADX disaggregation, both written in the
// batch's category and category option schemes.
type CategoryOption struct {
	Category string `json:"category"`
	Option   string `json:"option"`
}

// DataValue is one aggregate value in canonical form. Identifiers are written in the schemes
// its batch records. A value is disaggregated either by CategoryOptionCombo or, as ADX sends
// it, by Categories (category → option) until mapping resolves the combo; the same holds for
// AttributeOptionCombo and Attributes.
type DataValue struct {
	DataElement          string           `json:"dataElement"`
	Period               string           `json:"period"`
	OrgUnit              string           `json:"orgUnit"`
	CategoryOptionCombo  string           `json:"categoryOptionCombo,omitempty"`
	AttributeOptionCombo string           `json:"attributeOptionCombo,omitempty"`
	Categories           []CategoryOption `json:"categories,omitempty"`
	Attributes           []CategoryOption `json:"attributes,omitempty"`
	Value                string           `json:"value,omitempty"`
	Comment              string           `json:"comment,omitempty"`
	StoredBy             string           `json:"storedBy,omitempty"`
	FollowUp             bool             `json:"followUp,omitempty"`
	Deleted              bool             `json:"deleted,omitempty"`
	// DataSet is the data set the value was reported for when it differs by value (an
	// ADX group's dataSet), written in the batch's data set scheme; empty: the batch's.
	DataSet string `json:"dataSet,omitempty"`
	// Index is the value's 0-based position in the payload it arrived in, so that conflicts
	// and dead letters can point back at it.
	Index int `json:"index"`
}

// Key identifies the stored value a DataValue writes to, as DHIS2 keys it.
type Key struct {
	DataElement, Period, OrgUnit, CategoryOptionCombo, AttributeOptionCombo string
}

// Key returns the value's target key. Disaggregations still given as categories are folded
// into the combo fields so that two values with the same options share a key.
func (v *DataValue) Key() Key {
	k := Key{v.DataElement, v.Period, v.OrgUnit, v.CategoryOptionCombo, v.AttributeOptionCombo}
	if k.CategoryOptionCombo == "" && len(v.Categories) > 0 {
		k.CategoryOptionCombo = optionsKey(v.Categories)
	}
	if k.AttributeOptionCombo == "" && len(v.Attributes) > 0 {
		k.AttributeOptionCombo = optionsKey(v.Attributes)
	}
	return k
}

func optionsKey(opts []CategoryOption) string {
	var b strings.Builder
	for i, o := range opts {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(o.Category)
		b.WriteByte('=')
		b.WriteString(o.Option)
	}
	return b.String()
}

// Batch is the unit that travels through the streams: a bounded number of values from one
// payload (or one scheduled pull), with where they came from and how their ids are written.
type Batch struct {
	// ID is deterministic for the content, used as Nats-Msg-Id so that a retried ingest
	// does not create a second copy.
	ID string `json:"id"`
	// TxID is the transaction the batch belongs to; every batch of one payload shares it.
	TxID string `json:"txId"`
	// Seq is the batch's position within its transaction, from 0. After mapping splits a
	// batch for a target, Part numbers the pieces.
	Seq  int `json:"seq"`
	Part int `json:"part,omitempty"`
	// Source is the configured source (or exchange) the batch came from.
	Source   string    `json:"source"`
	Received time.Time `json:"received"`
	// Target is set once mapping has routed the batch to a delivery target.
	Target       string    `json:"target,omitempty"`
	Schemes      IDSchemes `json:"idSchemes"`
	DataSet      string    `json:"dataSet,omitempty"`
	CompleteDate string    `json:"completeDate,omitempty"`
	// Replays counts how often the batch came back from the dead-letter queue, so that a
	// replayed batch keeps its history.
	Replays int `json:"replays,omitempty"`
	// Deletion marks a batch whose values (all deleted: true) name stored values to remove
	// with DHIS2 2.43's deletion scope rather than value by value: delivery groups them
	// by org unit and period and sends each group as a scope of exactly those keys, and
	// falls back to the values themselves for a target older than 2.43.
	Deletion bool `json:"deletion,omitempty"`
	// ImportStrategy is DHIS2's importStrategy the client asked for (CREATE_AND_UPDATE,
	// CREATE, UPDATE, DELETE, ...); empty means the target's configured strategy.
	ImportStrategy string      `json:"importStrategy,omitempty"`
	Values         []DataValue `json:"dataValues"`
}
