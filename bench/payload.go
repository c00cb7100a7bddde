// Package bench measures Tally against its targets and against the script it replaces: it
// generates deterministic Kalima payloads of any size in every inbound format, drives a
// running Tally over HTTP, and reports throughput, latency and memory.
package bench

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Kalima sample codes the generated payloads use.
var (
	facilities = []string{"KL_N_F1", "KL_N_F2", "KL_S_F1", "KL_S_F2"}
	combos     = []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"}
	// EPI_MONTHLY's data elements: disaggregated by SEX_AGE, no attribute combo.
	elements = []string{"EPI_BCG", "EPI_PENTA1", "EPI_MEASLES1"}
)

// Formats are the payload formats Payload generates.
var Formats = []string{"json", "adx", "csv", "cht"}

// value returns the i-th generated value. Keys (element, combo, facility, month) cycle
// through the 120 months of 2015–2024, so that 5,760 consecutive values have distinct keys
// (a batch never repeats a key, which mapping would refuse as a duplicate) and every period
// is one the target accepts (not in the future).
func value(i int) (de, pe, ou, coc, v string) {
	de = elements[i%len(elements)]
	coc = combos[(i/len(elements))%len(combos)]
	ou = facilities[(i/(len(elements)*len(combos)))%len(facilities)]
	m := (i / (len(elements) * len(combos) * len(facilities))) % 120
	pe = fmt.Sprintf("%04d%02d", 2015+m/12, m%12+1)
	v = strconv.Itoa(i%97 + 1)
	return
}

// PeriodISO is value's period as an ADX start/duration.
func periodISO(pe string) string { return pe[:4] + "-" + pe[4:] + "-01/P1M" }

// Payload streams n generated values in format: json (DHIS2 data value set), adx, csv, or
// cht (CHT's export: numeric values, no top-level org unit), starting at value number
// start, so that payloads with different starts hold different values. It generates as it
// is read, so a million-value payload costs no memory to produce.
func Payload(format string, start, n int) (io.Reader, string, error) {
	g := &gen{i: start, n: start + n, first: start, format: format}
	switch format {
	case "json":
		g.head, g.tail, g.ctype = `{"dataValues":[`, "]}\n", "application/json"
	case "cht":
		g.head, g.tail, g.ctype = `{"dataSet":"EPI_MONTHLY","completeDate":"2024-02-03","dataValues":[`, "]}\n", "application/json"
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
	n, i, first    int
	format         string
	head, tail     string
	ctype          string
	buf            bytes.Buffer
	done           bool
	lastPE, lastOU string
}

func (g *gen) Read(p []byte) (int, error) {
	for g.buf.Len() < len(p) && !g.done {
		if g.i >= g.n {
			g.buf.WriteString(g.tail)
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

func (g *gen) write(i int) {
	de, pe, ou, coc, v := value(i)
	b := &g.buf
	switch g.format {
	case "json":
		if i > g.first {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `{"dataElement":%q,"period":%q,"orgUnit":%q,"categoryOptionCombo":%q,"value":%q}`, de, pe, ou, coc, v)
	case "cht":
		if i > g.first {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `{"dataElement":%q,"period":%q,"orgUnit":%q,"categoryOptionCombo":%q,"value":%s}`, de, pe, ou, coc, v)
	case "csv":
		fmt.Fprintf(b, "%s,%s,%s,%s,,%s,,,,false\n", de, pe, ou, coc, v)
	case "adx":
		if pe != g.lastPE || ou != g.lastOU {
			if i > g.first {
				b.WriteString("</group>\n")
			}
			fmt.Fprintf(b, `<group orgUnit=%q period=%q dataSet="EPI_MONTHLY">`+"\n", ou, periodISO(pe))
			g.lastPE, g.lastOU = pe, ou
		}
		sex, age := coc[:1], coc[2:]
		fmt.Fprintf(b, `<dataValue dataElement=%q SEX=%q AGE=%q value=%q/>`+"\n", de, sex, age, v)
	}
}
