package guest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// ExecStatus is the QEMU guest agent's account of a command it ran
// (guest-exec-status): what qm guest exec prints and what the API's
// agent/exec-status returns. Numbers may arrive as JSON numbers or as
// strings, depending on the Proxmox version.
type ExecStatus struct {
	Exited   bool
	ExitCode *int
	Signal   *int
	Output   string
}

// UnmarshalJSON reads exited, exitcode, signal, out-data and err-data.
func (s *ExecStatus) UnmarshalJSON(b []byte) error {
	var raw struct {
		Exited   any    `json:"exited"`
		ExitCode any    `json:"exitcode"`
		Signal   any    `json:"signal"`
		OutData  string `json:"out-data"`
		ErrData  string `json:"err-data"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	exited, err := number(raw.Exited)
	if err != nil {
		return fmt.Errorf("exited: %w", err)
	}
	if s.ExitCode, err = number(raw.ExitCode); err != nil {
		return fmt.Errorf("exitcode: %w", err)
	}
	if s.Signal, err = number(raw.Signal); err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	s.Exited = exited != nil && *exited != 0
	s.Output = raw.OutData + raw.ErrData
	return nil
}

// number reads a JSON number, or a string holding one; nil for null or
// absent.
func number(v any) (*int, error) {
	var s string
	switch v := v.(type) {
	case nil:
		return nil, nil
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		return nil, fmt.Errorf("want a number, got %T", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return nil, fmt.Errorf("want an integer, got %q", s)
	}
	n := int(f)
	return &n, nil
}

// Reply is the status as an AgentReply for command, shown as cmd, that
// came via via; waited is how long the transport waits before it gives up.
func (s *ExecStatus) Reply(cmd, via string, waited time.Duration) *AgentReply {
	return &AgentReply{Command: cmd, Via: via, Exited: s.Exited, Waited: waited,
		ExitCode: s.ExitCode, Signal: s.Signal, Output: []byte(s.Output)}
}
