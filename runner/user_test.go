package runner

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	passwd := "# comment\nroot:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nbad:x:notanumber:1\nnohome:x:1001:1001\n"
	group := "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nextra:x:2000:app, nohome\n"
	for _, tc := range []struct {
		spec        string
		noFiles     bool
		want        execUser
		wantErr     error
		wantErrText string
	}{
		{spec: "", want: execUser{0, 0, []int{0, 10}, "/root"}},
		{spec: "root", want: execUser{0, 0, []int{0, 10}, "/root"}},
		{spec: "app", want: execUser{1000, 1000, []int{1000, 10, 2000}, "/home/app"}},
		{spec: "1000", want: execUser{1000, 1000, []int{1000, 10, 2000}, "/home/app"}},
		{spec: "nohome", want: execUser{1001, 1001, []int{1001, 2000}, "/"}},
		{spec: "1000:2000", want: execUser{1000, 2000, []int{2000}, "/home/app"}},
		{spec: "root:root", want: execUser{0, 0, []int{0}, "/root"}},
		{spec: "app:extra", want: execUser{1000, 2000, []int{2000}, "/home/app"}},
		{spec: "app:5", want: execUser{1000, 5, []int{5}, "/home/app"}},
		{spec: "4242", want: execUser{4242, 0, []int{0}, "/"}},
		{spec: "nobody", wantErr: ErrNoPasswdEntries, wantErrText: "unable to find user nobody: no matching entries in passwd file"},
		{spec: "bad", wantErr: ErrNoPasswdEntries},
		{spec: "app:nogroup", wantErr: ErrNoGroupEntries, wantErrText: "unable to find group nogroup: no matching entries in group file"},
		{spec: "99999999999", wantErrText: "out of range"},
		{spec: "", noFiles: true, want: execUser{0, 0, []int{0}, "/"}},
		{spec: "7:8", noFiles: true, want: execUser{7, 8, []int{8}, "/"}},
		{spec: "app", noFiles: true, wantErr: ErrNoPasswdEntries},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			var p, g io.Reader
			if !tc.noFiles {
				p, g = strings.NewReader(passwd), strings.NewReader(group)
			}
			got, err := resolveUser(tc.spec, p, g)
			if tc.wantErr != nil || tc.wantErrText != "" {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.wantErrText) {
					t.Fatalf("err %v, want %v %q", err, tc.wantErr, tc.wantErrText)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestResolveUserHugeFile(t *testing.T) {
	huge := io.LimitReader(strings.NewReader(strings.Repeat("x:x:1:1\n", 2<<20)), userFileLimit+100)
	if _, err := resolveUser("x", huge, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err %v", err)
	}
}
