package guest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestExecStatus(t *testing.T) {
	cases := []struct {
		in      string
		wantErr string // of Reply("cmd", ...).Err(); "ok" for nil
	}{
		{`{"exited": 1, "exitcode": 0, "out-data": "hi\n"}`, "ok"},
		{`{"exited": "1", "exitcode": "0"}`, "ok"},
		{`{"exited": 1.0, "exitcode": 0.0}`, "ok"},
		{`{"exited": 1, "exitcode": 2, "out-data": "out\n", "err-data": "err\n"}`, "`cmd` exited 2: \nout\nerr"},
		{`{"exited": 1, "signal": 9}`, "`cmd` was killed by signal 9"},
		{`{"exited": 1}`, "`cmd` was killed by signal -1"},
		{`{"exited": 0}`, "`cmd`: still running after 0s"},
		{`{}`, "`cmd`: still running after 0s"},
	}
	for _, tc := range cases {
		var st ExecStatus
		if err := json.Unmarshal([]byte(tc.in), &st); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		err := st.Reply("cmd", "", 0).Err()
		if (tc.wantErr == "ok") != (err == nil) || (err != nil && err.Error() != tc.wantErr) {
			t.Errorf("%s: err %v, want %q", tc.in, err, tc.wantErr)
		}
	}
	for _, in := range []string{`{"exited": true}`, `{"exitcode": "x"}`, `{"exitcode": 1.5}`, `{"signal": [9]}`, `[]`, `{"exitcode": 1e20}`} {
		var st ExecStatus
		if err := json.Unmarshal([]byte(in), &st); err == nil {
			t.Errorf("%s accepted: %+v", in, st)
		}
	}
}

func FuzzExecStatus(f *testing.F) {
	f.Add([]byte(`{"exited": 1, "exitcode": 0, "out-data": "hi\n"}`))
	f.Add([]byte(`{"exited": 1, "signal": 9}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var st ExecStatus
		if json.Unmarshal(b, &st) != nil {
			return
		}
		// Whatever the agent said, the error names the command.
		if err := st.Reply("the-cmd", "", 0).Err(); err != nil && !strings.Contains(err.Error(), "`the-cmd`") {
			t.Fatalf("%s: %v", b, err)
		}
	})
}
