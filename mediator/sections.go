package mediator

import (
	"errors"

	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/mediator/exchange/schedule"
	"github.com/tally-hmis/tally/mediator/openhim"
	"github.com/tally-hmis/tally/mediator/pipeline"
	"github.com/tally-hmis/tally/transform/mapping"
)

// Sections are the parts of the configuration that other packages own, decoded and checked.
type Sections struct {
	OpenHIM  openhim.Config
	Mappings *mapping.Sets
	// Notify and Exchanges are the notify: and exchanges: sections (config/notify.go,
	// config/exchange.go), with their defaults applied.
	Notify    config.Notify
	Exchanges []*config.Exchange
}

// CheckConfig decodes and validates the sections other packages own, reporting every problem
// with its line. Service.New calls it, and so does `tally config validate`, so that a file
// that validates also starts.
func CheckConfig(cfg *config.Config) (*Sections, config.Problems) {
	sec := &Sections{}
	var probs config.Problems
	probs = append(probs, cfg.DecodeSection(&cfg.OpenHIM, "openhim", &sec.OpenHIM)...)
	if err := sec.OpenHIM.Validate(); err != nil {
		var fes openhim.ConfigError
		if errors.As(err, &fes) {
			for _, fe := range fes {
				probs = append(probs, cfg.Problem("openhim."+fe.Field, "%s", fe.Message))
			}
		} else {
			probs = append(probs, cfg.Problem("openhim", "%v", err))
		}
	}
	sec.OpenHIM = sec.OpenHIM.WithDefaults()
	sets, mprobs := pipeline.CompileMappings(cfg)
	sec.Mappings = sets
	probs = append(probs, mprobs...)
	var nprobs, eprobs config.Problems
	sec.Notify, nprobs = cfg.DecodeNotify()
	probs = append(probs, nprobs...)
	sec.Exchanges, eprobs = cfg.DecodeExchanges(&sec.Notify, config.ExchangeRefs{
		HasMapping:    func(name string) bool { _, ok := sets.Set(name); return ok },
		CheckSchedule: func(expr string) error { _, err := schedule.Parse(expr); return err },
	})
	probs = append(probs, eprobs...)
	return sec, probs
}
