package transform

// Mapped is what mapping made of one batch for one target: the batch the target receives,
// with its ids in the target's schemes, and the source values that could not be mapped.
type Mapped struct {
	Batch    *Batch
	Unmapped []Unmapped
}

// Unmapped is a source value mapping could not place, and why.
type Unmapped struct {
	Index  int    `json:"index"`
	Field  string `json:"field"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// Identity maps a batch to target without changing an id: the target reads the values in
// the schemes they arrived in. It is the mapping of a source that has no mapping set.
func Identity(in *Batch, target string) *Mapped {
	out := *in
	out.Target = target
	return &Mapped{Batch: &out}
}
