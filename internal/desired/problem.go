package desired

import (
	"fmt"

	"github.com/phoenix-hypervisor/phoenix/api"
)

type problems []api.Problem

func (ps *problems) add(file, guest, field, format string, args ...any) {
	*ps = append(*ps, api.Problem{File: file, Guest: guest, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (ps *problems) warn(file, guest, field, format string, args ...any) {
	*ps = append(*ps, api.Problem{File: file, Guest: guest, Field: field, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// split separates errors from warnings.
func (ps problems) split() (errs, warns []api.Problem) {
	for _, p := range ps {
		if p.Warning {
			warns = append(warns, p)
		} else {
			errs = append(errs, p)
		}
	}
	return errs, warns
}
