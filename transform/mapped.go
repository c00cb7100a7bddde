package transform

// Mapped is what mapping made of one batch for one target: the batch the target receives,
// with its ids in the target's schemes, and an account of every source value that did not
// reach it unchanged. Every source value of the input is in exactly one of Batch (possibly
// added up with others), Unmapped and Refused; Warnings and Duplicates only describe.
type Mapped struct {
	Batch *Batch
	// Unmapped are values left out on purpose and only reported: no rule names them under
	// the source's unmapped: drop (the default), their ids are unknown to the target under
	// unmapped: pass, or the source's org_units filter keeps them out. They are counted,
	// not dead-lettered: fixing them means changing the rules or the filter.
	Unmapped []Unmapped
	// Refused are values mapping could not deliver as the payload wrote them: unmapped
	// under unmapped: reject, a rule that cannot be applied, an option that matches no
	// combo, a period the target's release does not have, a refused duplicate. Each
	// belongs in the dead-letter queue on its own (the rest of the batch is delivered),
	// to be replayed once the rule or the metadata is fixed.
	Refused []Refused
	// Warnings are about values that were delivered all the same (an org unit the data
	// set is not assigned to) or, with Index -1, about the batch.
	Warnings []Warning
	// Duplicates says what the source's duplicates policy did wherever two or more source
	// values met on one target key.
	Duplicates []Duplicate
	// After are the earlier batches of the payload (their Seq) whose values on a key this
	// batch replaces or adds up (duplicates: last or sum): this batch must reach the
	// target after them, or their older value would be the one that stays.
	After []int
}

// Unmapped is a source value mapping could not place, and why.
type Unmapped struct {
	Index  int    `json:"index"`
	Field  string `json:"field"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// Refused is a source value mapping refused: the value as received (its Index points into
// the payload), the field at fault, why, and the DHIS2 error code of the same failure
// where DHIS2 has one (E7610 data element not found, E7611 period not valid, E7612 org unit
// not found, E7613/E7615 option combo not found, E7619 value type, E7630/E7631 combo
// required, E7633 not in the data set, E7634/E7635 combo not in the category combo, E8128
// values on the same key), so an operator reads it as DHIS2 would have reported it.
type Refused struct {
	Value     DataValue `json:"value"`
	Field     string    `json:"field"`
	Reason    string    `json:"reason"`
	ErrorCode string    `json:"errorCode,omitempty"`
}

// Warning is something an operator should know about a value that was delivered (Index is
// its payload index), or about the whole batch (Index -1).
type Warning struct {
	Index     int    `json:"index"`
	Field     string `json:"field,omitempty"`
	Value     string `json:"value,omitempty"`
	Reason    string `json:"reason"`
	ErrorCode string `json:"errorCode,omitempty"`
}

// DuplicateAction is what a duplicates policy did to the values that met on one key.
type DuplicateAction string

// The duplicates actions.
const (
	// DuplicateLast delivered the value received last (duplicates: last).
	DuplicateLast DuplicateAction = "last"
	// DuplicateSum delivered the sum of the values (duplicates: sum).
	DuplicateSum DuplicateAction = "sum"
	// DuplicateRefused refused the values (duplicates: reject); they are in Refused.
	DuplicateRefused DuplicateAction = "refused"
	// DuplicateIdentical delivered one of values that are identical (same value, comment
	// and deletion), which even duplicates: reject lets pass: DHIS2 stores the same.
	DuplicateIdentical DuplicateAction = "identical"
)

// Duplicate reports two or more source values that mapped to one target key.
type Duplicate struct {
	// Key is the target key, in the target's schemes.
	Key Key `json:"key"`
	// Indexes are the payload indexes of the values, in the order they were received.
	Indexes []int           `json:"indexes"`
	Action  DuplicateAction `json:"action"`
	// Value is what was delivered for the key (empty when refused or deleted).
	Value string `json:"value,omitempty"`
}

// Identity maps a batch to target without changing an id: the target reads the values in
// the schemes they arrived in. The mapping engine uses it for a source without a mapping
// set once the duplicates policy has been applied.
func Identity(in *Batch, target string) *Mapped {
	out := *in
	out.Target = target
	return &Mapped{Batch: &out}
}
