package api

import "testing"

func TestParseID(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{"100", 100, false}, {"999999999", 999999999, false}, {"941", 941, false},
		{"99", 0, true}, {"1000000000", 0, true}, {"0941", 0, true}, {"94a", 0, true},
		{"", 0, true}, {"-941", 0, true}, {" 941", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseID(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseID(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
