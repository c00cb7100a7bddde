package adx

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
)

// Namespace is the XML namespace of ADX messages.
const Namespace = "urn:ihe:qrph:adx:2015"

const (
	xmlNS   = "http://www.w3.org/XML/1998/namespace"
	xmlnsNS = "http://www.w3.org/2000/xmlns/"
	// maxNamespaces bounds the namespace declarations in scope, which keeps resolving a
	// prefix cheap whatever the input.
	maxNamespaces = 64
)

// Options tunes Decode. The zero value reads messages as DHIS2 2.38–2.42 does, with the
// default limits.
type Options struct {
	// Schemes are the id schemes the request declared (the DHIS2 query parameters idScheme,
	// dataElementIdScheme, orgUnitIdScheme, categoryIdScheme, …). Decode passes them on in
	// every transform.Group it emits, with IDScheme defaulting to CODE as ADX's does
	// (adx.md §8); everything else is left as given. Set them here even when the
	// transform.Batcher's config carries them too: the Batcher lets a group's schemes win, so
	// a query's idScheme=UID given only to the Batcher would lose against the CODE default.
	Schemes transform.IDSchemes

	// IsText reports whether a data element, identified as the message writes it, has a
	// non-numeric value type. The value of such an element is the text of its <annotation>
	// (the value attribute, conventionally "0", is ignored) and a missing annotation is an
	// error, as in DHIS2 (adx.md §5). Nil treats every data element as numeric: an
	// annotation then becomes the value's comment unless a comment attribute is present.
	IsText func(dataElement string) bool

	// AnnotationIsValue applies the rule of DHIS2 2.43 and later instead: an <annotation>
	// replaces the value of every data element. IsText is then consulted only to require an
	// annotation.
	AnnotationIsValue bool

	// Limits bound what one message may hold; zero fields take the defaults.
	Limits Limits
}

// Limits bound the resources one message can claim. A message that exceeds one is
// refused with an error naming the place and the limit.
type Limits struct {
	// MaxDepth bounds element nesting (ADX needs 4: adx, group, dataValue, annotation).
	// Default 16.
	MaxDepth int
	// MaxAttrs bounds the attributes of one element. Default 256.
	MaxAttrs int
	// MaxAttrBytes bounds one attribute value, as written. Default 64 KiB.
	MaxAttrBytes int
	// MaxTextBytes bounds the text of one annotation. Default 256 KiB (DHIS2 stores at
	// most 50,000 characters).
	MaxTextBytes int
	// MaxTagBytes bounds one tag, comment, processing instruction or CDATA section, and so
	// the scanner's buffer. Default 1 MiB; at least 4 KiB.
	MaxTagBytes int
}

// DefaultLimits are the limits a zero Limits field takes.
func DefaultLimits() Limits {
	return Limits{MaxDepth: 16, MaxAttrs: 256, MaxAttrBytes: 64 << 10, MaxTextBytes: 256 << 10, MaxTagBytes: 1 << 20}
}

func (l Limits) withDefaults() Limits {
	def := DefaultLimits()
	pick := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	l.MaxDepth = pick(l.MaxDepth, def.MaxDepth)
	l.MaxAttrs = pick(l.MaxAttrs, def.MaxAttrs)
	l.MaxAttrBytes = pick(l.MaxAttrBytes, def.MaxAttrBytes)
	l.MaxTextBytes = pick(l.MaxTextBytes, def.MaxTextBytes)
	l.MaxTagBytes = max(pick(l.MaxTagBytes, def.MaxTagBytes), 4<<10)
	return l
}

// Decode reads one ADX message from r and passes it to sink: a transform.Group for each
// <group>, then each of its data values, with the group's org unit, period, attribute
// option combo (or attribute categories) filled in. Periods are converted to DHIS2 period
// ids; category attributes are kept as written, in order, in DataValue.Categories (on a
// dataValue) and DataValue.Attributes (on a group), for mapping to resolve — unless an
// explicit categoryOptionCombo or attributeOptionCombo is given, which DHIS2 then uses as
// it is and which makes it ignore the category attributes, as Decode does.
//
// Decode streams: it holds one group's attributes and one value at a time, whatever the
// size of the message.
//
// A malformed document, an exceeded limit, or a problem with a group (no orgUnit or
// period, a period DHIS2 does not accept) ends the read with a *transform.InputError,
// since DHIS2 refuses the whole message for those. A problem with a single value (a
// missing dataElement or value attribute, a text data element without annotation) is
// passed to the sink's Reject method if it has one, as transform.Batcher does, and the
// read goes on; otherwise it ends the read. Its Index is the value's position among all
// <dataValue> elements of the message, and its Pos names the attribute, as in
// "/adx/group[2]/dataValue[5]@value". Errors of the sink are returned wrapped.
func Decode(r io.Reader, sink transform.Sink, opts Options) error {
	opts.Limits = opts.Limits.withDefaults()
	return decode(newScanner(r, opts.Limits), sink, opts)
}

func decode(lx lexer, sink transform.Sink, opts Options) error {
	d := &decoder{
		lx:     lx,
		sink:   sink,
		opts:   opts,
		intern: interner{m: make(map[string]string, 256)},
	}
	d.rej, _ = sink.(transform.Rejecter)
	d.schemes = opts.Schemes
	d.schemes.IDScheme = d.schemes.IDScheme.Or(transform.SchemeCode)
	if err := d.run(); err != nil {
		return fmt.Errorf("adx: %w", err)
	}
	return nil
}

type nsBinding struct {
	prefix, uri string
	depth       int
}

type decoder struct {
	lx      lexer
	sink    transform.Sink
	rej     transform.Rejecter
	opts    Options
	schemes transform.IDSchemes
	intern  interner

	ns    []nsBinding
	docNS string
	depth int // open elements
	skip  int // when > 0, the depth of an element whose content is ignored

	// the current group
	groups  int // <group> elements so far; the current one's 1-based index
	gLine   int
	gCol    int
	orgUnit string
	period  string
	aoc     string
	attrs   []transform.CategoryOption
	// defaults for the group's values, from attributes DHIS2 2.38–2.42 copies onto each
	gCOC, gComment, gStoredBy string
	gFollowUp, gDeleted       bool
	lastISO, lastID           string

	// the current value
	values int // <dataValue> elements in the current group
	index  int // the current value's 0-based position among the message's <dataValue>s
	count  int // <dataValue> elements so far in the message
	vLine  int
	vCol   int
	cur    valueState
	cats   []transform.CategoryOption
	slab   []transform.CategoryOption
	ann    []byte
	inAnn  bool
	dv     transform.DataValue
}

type valueState struct {
	dataElement, value, coc, comment, storedBy string
	hasDE, hasValue, hasAnn                    bool
	ownComment                                 bool // a comment attribute on the dataValue itself
	followUp, deleted                          bool
	err                                        *transform.InputError
}

func (d *decoder) run() error {
	for {
		kind, err := d.lx.next()
		if err != nil {
			return d.lexError(err)
		}
		switch kind {
		case kindStart:
			d.depth++
			if err := d.start(); err != nil {
				return err
			}
		case kindEnd:
			if err := d.end(); err != nil {
				return err
			}
			for len(d.ns) > 0 && d.ns[len(d.ns)-1].depth == d.depth {
				d.ns = d.ns[:len(d.ns)-1]
			}
			d.depth--
		case kindText:
			if d.inAnn && d.skip == 0 {
				text := d.lx.tok().text
				if len(d.ann)+len(text) > d.opts.Limits.MaxTextBytes {
					line, col := d.lx.pos()
					return d.fatal(line, col, d.path(""), "annotation", "", fmt.Sprintf(
						"at most %d bytes of annotation text (Limits.MaxTextBytes)", d.opts.Limits.MaxTextBytes))
				}
				d.ann = append(d.ann, text...)
			}
		case kindEOF:
			return nil
		}
	}
}

// lexError turns a scanner error into an input error at the current place; read errors
// pass through.
func (d *decoder) lexError(err error) error {
	var xe *xmlError
	if errors.As(err, &xe) {
		return &transform.InputError{
			Pos:      transform.Pos{Line: xe.line, Column: xe.col, Path: d.path("")},
			Index:    -1,
			Expected: "well-formed XML: " + xe.msg,
		}
	}
	return err
}

func (d *decoder) fatal(line, col int, path, field, value, expected string) error {
	return &transform.InputError{
		Pos:   transform.Pos{Line: line, Column: col, Path: path},
		Index: -1, Field: field, Value: value, Expected: expected,
	}
}

// path names the innermost ADX element open, with attr appended as "@attr".
func (d *decoder) path(attr string) string {
	p := ""
	depth := d.depth
	if d.skip > 0 {
		depth = d.skip - 1
	}
	if depth >= 1 {
		p = "/adx"
	}
	if depth >= 2 && d.groups > 0 {
		p += "/group[" + strconv.Itoa(d.groups) + "]"
	}
	if depth >= 3 && d.values > 0 {
		p += "/dataValue[" + strconv.Itoa(d.values) + "]"
	}
	if depth >= 4 && d.inAnn {
		p += "/annotation"
	}
	if attr != "" {
		p += "@" + attr
	}
	return p
}

// Pos locates the current value; the decoder is the transform.Locator it passes to the sink.
func (d *decoder) Pos() transform.Pos {
	return transform.Pos{Line: d.vLine, Column: d.vCol,
		Path: "/adx/group[" + strconv.Itoa(d.groups) + "]/dataValue[" + strconv.Itoa(d.values) + "]"}
}

// bindNamespaces records the namespace declarations of the current start tag and checks
// the prefixes it uses.
func (d *decoder) bindNamespaces(t *token) error {
	prefixed := 0
	for i := range t.attrs {
		a := &t.attrs[i]
		if len(d.ns) >= maxNamespaces && (string(a.prefix) == "xmlns" || a.prefix == nil && string(a.local) == "xmlns") {
			return d.nsError(fmt.Sprintf("more than %d namespace declarations in scope", maxNamespaces))
		}
		switch {
		case a.prefix == nil && string(a.local) == "xmlns":
			d.ns = append(d.ns, nsBinding{prefix: "", uri: string(a.value), depth: d.depth})
		case string(a.prefix) == "xmlns":
			p, uri := string(a.local), string(a.value)
			switch {
			case p == "xmlns":
				return d.nsError("the prefix xmlns cannot be declared")
			case p == "xml" && uri != xmlNS, p != "xml" && uri == xmlNS:
				return d.nsError("only the prefix xml may be bound to " + xmlNS)
			case uri == xmlnsNS:
				return d.nsError("no prefix may be bound to " + xmlnsNS)
			case uri == "":
				return d.nsError("prefix " + p + " cannot be bound to the empty namespace name")
			}
			d.ns = append(d.ns, nsBinding{prefix: p, uri: uri, depth: d.depth})
		case a.prefix != nil:
			prefixed++
		}
	}
	if string(t.prefix) == "xmlns" {
		return d.nsError("element names cannot have the prefix xmlns")
	}
	if t.prefix != nil {
		if _, ok := d.resolve(t.prefix); !ok {
			return d.nsError(fmt.Sprintf("prefix %s of element %s:%s is not declared", t.prefix, t.prefix, t.local))
		}
	}
	if prefixed == 0 {
		return nil
	}
	// Prefixed attributes must have declared prefixes and differ in namespace or local name.
	type qualified struct {
		uri   string
		local []byte
		raw   []byte
	}
	seen := make([]qualified, 0, prefixed)
	for i := range t.attrs {
		a := &t.attrs[i]
		if a.prefix == nil || string(a.prefix) == "xmlns" {
			continue
		}
		uri, ok := d.resolve(a.prefix)
		if !ok {
			return d.nsError(fmt.Sprintf("prefix %s of attribute %s is not declared", a.prefix, a.raw))
		}
		for _, b := range seen {
			if b.uri == uri && string(b.local) == string(a.local) {
				return d.nsError(fmt.Sprintf("attributes %s and %s have the same namespace and name", b.raw, a.raw))
			}
		}
		seen = append(seen, qualified{uri, a.local, a.raw})
	}
	return nil
}

func (d *decoder) nsError(msg string) error {
	line, col := d.lx.pos()
	return d.fatal(line, col, d.path(""), "", "", "namespace-well-formed XML: "+msg)
}

// resolve returns the namespace a prefix (nil for none) is bound to.
func (d *decoder) resolve(prefix []byte) (string, bool) {
	if string(prefix) == "xml" {
		return xmlNS, true
	}
	for i := len(d.ns) - 1; i >= 0; i-- {
		if d.ns[i].prefix == string(prefix) {
			return d.ns[i].uri, true
		}
	}
	return "", prefix == nil
}

func (d *decoder) start() error {
	t := d.lx.tok()
	if err := d.bindNamespaces(t); err != nil {
		return err
	}
	if d.skip > 0 {
		return nil
	}
	ns, _ := d.resolve(t.prefix)
	local := t.local
	switch d.depth {
	case 1:
		if string(local) != "adx" || ns != Namespace && ns != "" {
			line, col := d.lx.pos()
			name := string(local)
			if ns != "" {
				name = "{" + ns + "}" + name
			}
			return d.fatal(line, col, "/"+string(local), "root element", name,
				`an ADX message: root element <adx xmlns="`+Namespace+`">`)
		}
		d.docNS = ns
		return nil
	case 2:
		if ns == d.docNS && string(local) == "group" {
			return d.startGroup(t)
		}
		return d.unexpected(ns, local, "adx", "group")
	case 3:
		if ns == d.docNS && string(local) == "dataValue" {
			d.startValue(t)
			return nil
		}
		return d.unexpected(ns, local, "group", "dataValue")
	case 4:
		if ns == d.docNS && string(local) == "annotation" {
			if d.cur.hasAnn {
				d.valueError("annotation", "", "at most one <annotation> per dataValue")
				d.skip = d.depth
				return nil
			}
			d.inAnn = true
			d.ann = d.ann[:0]
			return nil
		}
		// DHIS2 skips other content of a dataValue (its own test files carry <created> and
		// <lastUpdated> here), and so does Decode.
		d.skip = d.depth
		return nil
	default:
		d.valueError("annotation", "", "text only: an <annotation> cannot hold elements")
		d.skip = d.depth
		return nil
	}
}

// unexpected handles an element other than the one ADX allows: foreign-namespace
// extensions are skipped, anything else in the ADX namespace is refused.
func (d *decoder) unexpected(ns string, local []byte, parent, want string) error {
	if ns != d.docNS {
		d.skip = d.depth
		return nil
	}
	line, col := d.lx.pos()
	d.depth-- // name the parent
	p := d.path("")
	d.depth++
	return d.fatal(line, col, p, "element", string(local), "only <"+want+"> elements inside <"+parent+">")
}

func (d *decoder) end() error {
	if d.skip > 0 {
		if d.depth == d.skip {
			d.skip = 0
		}
		return nil
	}
	switch d.depth {
	case 3:
		return d.endValue()
	case 4:
		if d.inAnn {
			d.inAnn = false
			d.cur.hasAnn = true
		}
	}
	return nil
}

func (d *decoder) startGroup(t *token) error {
	d.groups++
	d.values = 0
	d.gLine, d.gCol = d.lx.pos()
	d.orgUnit, d.period, d.aoc = "", "", ""
	d.gCOC, d.gComment, d.gStoredBy = "", "", ""
	d.gFollowUp, d.gDeleted = false, false
	g := transform.Group{Schemes: d.schemes}
	var attrs []transform.CategoryOption
	var periodISO string
	hasOU, hasPeriod := false, false
	for i := range t.attrs {
		a := &t.attrs[i]
		if a.prefix != nil || string(a.local) == "xmlns" {
			continue
		}
		switch string(a.local) {
		case "orgUnit":
			d.orgUnit, hasOU = d.intern.str(a.value), len(a.value) > 0
		case "period":
			periodISO, hasPeriod = string(a.value), len(a.value) > 0
		case "dataSet":
			g.DataSet = d.intern.str(a.value)
		case "completeDate":
			g.CompleteDate = string(a.value)
		case "attributeOptionCombo":
			d.aoc = d.intern.str(a.value)
		case "categoryOptionCombo":
			d.gCOC = d.intern.str(a.value)
		case "comment":
			d.gComment = string(a.value)
		case "storedBy":
			d.gStoredBy = d.intern.str(a.value)
		case "followup", "deleted":
			b, ok := parseBool(a.value)
			if !ok {
				return d.groupError(string(a.local), string(a.value), "true or false")
			}
			if string(a.local) == "followup" {
				d.gFollowUp = b
			} else {
				d.gDeleted = b
			}
		case "created", "lastUpdated":
			// DHIS2 ignores these on import.
		case "dataElement", "value":
			return d.groupError(string(a.local), string(a.value), "an attribute of <dataValue>, not of <group>")
		default:
			if len(a.value) == 0 {
				return d.groupError(string(a.local), "", "an attribute category option")
			}
			attrs = append(attrs, transform.CategoryOption{
				Category: d.intern.str(a.local), Option: d.intern.str(a.value)})
		}
	}
	if !hasOU {
		return d.groupError("orgUnit", "", "orgUnit attribute is required on 'group'")
	}
	if !hasPeriod {
		return d.groupError("period", "", "period attribute is required on 'group'")
	}
	if periodISO == d.lastISO {
		d.period = d.lastID
	} else {
		p, err := period.ParseISO(periodISO)
		if err != nil {
			return d.groupError("period", periodISO, err.Error())
		}
		d.period = p.ID()
		d.lastISO, d.lastID = periodISO, d.period
	}
	if d.aoc == "" && len(attrs) > 0 {
		d.attrs = attrs[:len(attrs):len(attrs)]
	} else {
		d.attrs = nil
	}
	if err := d.sink.Group(g); err != nil {
		return err
	}
	return nil
}

func (d *decoder) groupError(attr, value, expected string) error {
	return d.fatal(d.gLine, d.gCol, "/adx/group["+strconv.Itoa(d.groups)+"]@"+attr, attr, value, expected)
}

func parseBool(b []byte) (bool, bool) {
	switch {
	case equalFoldASCII(string(b), "true"):
		return true, true
	case equalFoldASCII(string(b), "false"):
		return false, true
	}
	return false, false
}

func (d *decoder) startValue(t *token) {
	d.values++
	d.index = d.count
	d.count++
	d.vLine, d.vCol = d.lx.pos()
	d.cur = valueState{coc: d.gCOC, comment: d.gComment, storedBy: d.gStoredBy,
		followUp: d.gFollowUp, deleted: d.gDeleted}
	d.cats = d.cats[:0]
	d.inAnn = false
	for i := range t.attrs {
		a := &t.attrs[i]
		if a.prefix != nil || string(a.local) == "xmlns" {
			continue
		}
		switch string(a.local) {
		case "dataElement":
			d.cur.dataElement, d.cur.hasDE = d.intern.str(a.value), len(a.value) > 0
		case "value":
			d.cur.value, d.cur.hasValue = d.intern.value(a.value), true
		case "categoryOptionCombo":
			d.cur.coc = d.intern.str(a.value)
		case "comment":
			d.cur.comment, d.cur.ownComment = string(a.value), true
		case "storedBy":
			d.cur.storedBy = d.intern.str(a.value)
		case "followup", "deleted":
			b, ok := parseBool(a.value)
			if !ok {
				d.valueError(string(a.local), string(a.value), "true or false")
			} else if string(a.local) == "followup" {
				d.cur.followUp = b
			} else {
				d.cur.deleted = b
			}
		case "created", "lastUpdated":
			// DHIS2 ignores these on import.
		case "orgUnit", "period", "attributeOptionCombo", "dataSet", "completeDate":
			d.valueError(string(a.local), string(a.value), "an attribute of <group>, not of <dataValue>")
		default:
			if len(a.value) == 0 {
				d.valueError(string(a.local), "", "a category option")
				continue
			}
			d.cats = append(d.cats, transform.CategoryOption{
				Category: d.intern.str(a.local), Option: d.intern.str(a.value)})
		}
	}
}

// valueError records the first problem of the current value.
func (d *decoder) valueError(attr, value, expected string) {
	if d.cur.err != nil {
		return
	}
	path := d.Pos().Path
	if attr == "annotation" {
		path += "/annotation"
	} else if attr != "" {
		path += "@" + attr
	}
	d.cur.err = &transform.InputError{
		Pos:   transform.Pos{Line: d.vLine, Column: d.vCol, Path: path},
		Index: d.index, Field: attr, Value: value, Expected: expected,
	}
}

// adxErrorObject is the object of the conflict DHIS2 2.38–2.42 reports for an ADX
// problem with one value that names no object (adx.md §9).
const adxErrorObject = "ADX Error"

// dhis2ValueError records a problem DHIS2 also finds with the current value, with the
// conflict DHIS2 reports for it: an AdxException's {object, value}, without an error code
// (DefaultAdxDataService collects them as ADX conflicts; adx.md §9).
func (d *decoder) dhis2ValueError(attr, object, message string) {
	d.valueError(attr, "", message)
	d.cur.err.Conflict = &transform.ImportConflict{Object: object, Value: message}
}

func (d *decoder) endValue() error {
	c := &d.cur
	switch {
	case c.err != nil:
	case !c.hasDE:
		d.dhis2ValueError("dataElement", adxErrorObject, "dataElement attribute is required on 'dataValue'")
	case !c.hasValue:
		d.dhis2ValueError("value", adxErrorObject, "value attribute is required on 'dataValue'")
	}
	text := d.opts.IsText != nil && c.hasDE && d.opts.IsText(c.dataElement)
	if c.err == nil && text && !c.hasAnn {
		d.dhis2ValueError("annotation", c.dataElement, "DataElement expects text annotation")
	}
	if c.err != nil {
		if d.rej == nil {
			return c.err
		}
		return d.rej.Reject(c.err, d)
	}
	v := &d.dv
	*v = transform.DataValue{
		DataElement:          c.dataElement,
		Period:               d.period,
		OrgUnit:              d.orgUnit,
		CategoryOptionCombo:  c.coc,
		AttributeOptionCombo: d.aoc,
		Attributes:           d.attrs,
		Value:                c.value,
		Comment:              c.comment,
		StoredBy:             c.storedBy,
		FollowUp:             c.followUp,
		Deleted:              c.deleted,
		Index:                d.index,
	}
	if c.coc == "" && len(d.cats) > 0 {
		n := len(d.cats)
		if len(d.slab) < n {
			d.slab = make([]transform.CategoryOption, max(n, 1024))
		}
		v.Categories = d.slab[:n:n]
		d.slab = d.slab[n:]
		copy(v.Categories, d.cats)
	}
	if c.hasAnn {
		switch {
		case d.opts.AnnotationIsValue || text:
			v.Value = string(d.ann)
		case !c.ownComment:
			// The value's own annotation wins over a group-level comment.
			v.Comment = string(d.ann)
		}
	}
	return d.sink.Value(v, d)
}

// interner shares the strings that repeat across a message (identifiers, small values)
// so that a value costs few allocations. It is bounded; past the bound it just copies.
type interner struct {
	m map[string]string
}

const (
	internMaxEntries = 1 << 14
	internMaxLen     = 64
)

func (in *interner) str(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.m) < internMaxEntries && len(b) <= internMaxLen {
		in.m[s] = s
	}
	return s
}

// value interns short values only: identifiers repeat, long values rarely do.
func (in *interner) value(b []byte) string {
	if len(b) > 8 {
		return string(b)
	}
	return in.str(b)
}
