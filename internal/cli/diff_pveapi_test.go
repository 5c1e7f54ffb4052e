package cli_test

import "testing"

// TestPVEAPI_diffAfterProvisioning: on the fake cluster a provisioned chain
// shows no difference: values the API hands back in its own form are no
// change.
func TestPVEAPI_diffAfterProvisioning(t *testing.T) {
	l := newAPILab(t)
	l.provision()
	mark := len(l.fake.Requests())
	if code, out, errOut := l.run("diff", "941"); code != 0 {
		t.Errorf("diff after provisioning: exit %d\n%s%s", code, out, errOut)
	}
	if w := l.writes(mark); len(w) > 0 {
		t.Errorf("diff wrote to the cluster: %v", w)
	}
}
