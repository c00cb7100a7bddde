// Package bench measures Tally against its targets and against the script it replaces. It
// generates deterministic payloads of any size in every inbound format, runs two sinks that
// cannot flatter (a counting DHIS2 endpoint that decodes every value, and the emulator's
// validating store), drives a running Tally and the reference script over HTTP, verifies
// after every run that each value sent arrived exactly once, and reports throughput, CPU
// time per value, latency, memory, store size and behaviour against a DHIS2-shaped capacity
// limit. `tally bench` is its command line.
package bench

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// Kalima sample codes the Payload generator uses.
var (
	facilities = []string{"KL_N_F1", "KL_N_F2", "KL_S_F1", "KL_S_F2"}
	combos     = []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"}
	// EPI_MONTHLY's data elements: disaggregated by SEX_AGE, no attribute combo.
	elements = []string{"EPI_BCG", "EPI_PENTA1", "EPI_MEASLES1"}
)

// Formats are the payload formats Payload generates.
var Formats = []string{"json", "adx", "csv", "cht"}

// valueSpace is what a generator draws values from.
type valueSpace interface {
	// value returns the i-th value in the sender's codes.
	value(i int) (de, pe, ou, coc, v string)
	dataSet() string
}

// kalima draws from the Kalima sample: keys (element, combo, facility, month) cycle through
// the 120 months of 2015–2024, so that 5,760 consecutive values have distinct keys (a batch
// never repeats a key, which mapping would refuse as a duplicate) and every period is one
// the target accepts (not in the future).
type kalima struct{}

func (kalima) value(i int) (de, pe, ou, coc, v string) {
	de = elements[i%len(elements)]
	coc = combos[(i/len(elements))%len(combos)]
	ou = facilities[(i/(len(elements)*len(combos)))%len(facilities)]
	m := (i / (len(elements) * len(combos) * len(facilities))) % 120
	pe = fmt.Sprintf("%04d%02d", 2015+m/12, m%12+1)
	v = strconv.Itoa(i%97 + 1)
	return
}

func (kalima) dataSet() string { return "EPI_MONTHLY" }

// universe draws from the bench's generated key space (universe.go), in the source's codes.
type universe struct{ n *names }

// universeNames is built once: 5,000 org unit codes are formatted once per process.
var universeNames = sync.OnceValue(newNames)

func (u universe) value(i int) (de, pe, ou, coc, v string) {
	k := keyOf(i)
	return u.n.deSource[k.de], u.n.period[k.month], u.n.ouCode[k.ou], uComboCodes[k.coc], expectedValue(i)
}

func (universe) dataSet() string { return universeDataSet }

// periodISO is a monthly period as an ADX start/duration.
func periodISO(pe string) string { return pe[:4] + "-" + pe[4:] + "-01/P1M" }

// Payload streams n values of the Kalima sample in format: json (DHIS2 data value set),
// adx, csv, or cht (CHT's export: numeric values, no top-level org unit), starting at value
// number start, so that payloads with different starts hold different values. It generates
// as it is read, so a million-value payload costs no memory to produce.
func Payload(format string, start, n int) (io.Reader, string, error) {
	return newGen(kalima{}, format, start, n)
}

// UniversePayload is Payload over the bench's generated key space: value number i has a
// key of its own for every i below UniverseSize, in the source codes the bench's mapping
// set translates.
func UniversePayload(format string, start, n int) (io.Reader, string, error) {
	return newGen(universe{universeNames()}, format, start, n)
}

func newGen(sp valueSpace, format string, start, n int) (*gen, string, error) {
	g := &gen{sp: sp, i: start, n: start + n, first: start, format: format}
	switch format {
	case "json":
		g.head, g.tail, g.ctype = `{"dataValues":[`, "]}\n", "application/json"
	case "cht":
		g.head = `{"dataSet":"` + sp.dataSet() + `","completeDate":"2024-02-03","dataValues":[`
		g.tail, g.ctype = "]}\n", "application/json"
	case "adx":
		g.head = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<adx xmlns="urn:ihe:qrph:adx:2015" exported="2024-02-03T10:00:00Z">` + "\n"
		g.tail, g.ctype = "</group>\n</adx>\n", "application/adx+xml"
	case "csv":
		g.head = "dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value,storedby,lastupdated,comment,followup\n"
		g.ctype = "application/csv"
	default:
		return nil, "", fmt.Errorf("bench: unknown format %q; want one of %v", format, Formats)
	}
	g.buf.WriteString(g.head)
	return g, g.ctype, nil
}

type gen struct {
	sp             valueSpace
	n, i, first    int
	format         string
	head, tail     string
	ctype          string
	buf            bytes.Buffer
	scratch        []byte
	done           bool
	lastPE, lastOU string
}

func (g *gen) Read(p []byte) (int, error) {
	for g.buf.Len() < len(p) && !g.done {
		if g.i >= g.n {
			if g.format == "adx" && g.i == g.first {
				g.buf.Reset() // an empty ADX message has no group to close
				g.buf.WriteString(g.head + "</adx>\n")
			} else {
				g.buf.WriteString(g.tail)
			}
			g.done = true
			break
		}
		g.write(g.i)
		g.i++
	}
	if g.buf.Len() == 0 && g.done {
		return 0, io.EOF
	}
	return g.buf.Read(p)
}

// write appends value i. Codes hold no character that JSON, XML or CSV would escape, so
// they are written as they are (appending, not fmt: the generator must not be what a
// 10-million-value run measures).
func (g *gen) write(i int) {
	de, pe, ou, coc, v := g.sp.value(i)
	b := g.scratch[:0]
	attr := func(name, val string) {
		b = append(append(append(append(b, ' '), name...), `="`...), val...)
		b = append(b, '"')
	}
	switch g.format {
	case "json", "cht":
		if i > g.first {
			b = append(b, ',')
		}
		b = append(append(b, `{"dataElement":"`...), de...)
		b = append(append(b, `","period":"`...), pe...)
		b = append(append(b, `","orgUnit":"`...), ou...)
		b = append(append(b, `","categoryOptionCombo":"`...), coc...)
		if g.format == "cht" {
			b = append(append(append(b, `","value":`...), v...), '}')
		} else {
			b = append(append(append(b, `","value":"`...), v...), `"}`...)
		}
	case "csv":
		for _, f := range []string{de, pe, ou, coc} {
			b = append(append(b, f...), ',')
		}
		b = append(append(append(b, ','), v...), ",,,,false\n"...)
	case "adx":
		if pe != g.lastPE || ou != g.lastOU {
			if i > g.first {
				b = append(b, "</group>\n"...)
			}
			b = append(b, "<group"...)
			attr("orgUnit", ou)
			attr("period", periodISO(pe))
			attr("dataSet", g.sp.dataSet())
			b = append(b, ">\n"...)
			g.lastPE, g.lastOU = pe, ou
		}
		b = append(b, "<dataValue"...)
		attr("dataElement", de)
		attr("SEX", coc[:1])
		attr("AGE", coc[2:])
		attr("value", v)
		b = append(b, "/>\n"...)
	}
	g.buf.Write(b)
	g.scratch = b
}
