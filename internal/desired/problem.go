package desired

import (
	"fmt"

	"github.com/phoenix-hypervisor/phoenix/api"
)

type problems []api.Problem

func (ps *problems) add(file, guest, field, format string, args ...any) {
	*ps = append(*ps, api.Problem{File: file, Guest: guest, Field: field, Msg: fmt.Sprintf(format, args...)})
}
