package layer

import "testing"

func TestIsInitialUIDMap(t *testing.T) {
	for data, want := range map[string]bool{
		"         0          0 4294967295\n":                                   true,
		"         0       1000          1\n":                                   false,
		"         0       1000          1\n         1     100000      65536\n": false,
		"": false,
	} {
		if got := isInitialUIDMap(data); got != want {
			t.Errorf("isInitialUIDMap(%q) = %v", data, got)
		}
	}
}
