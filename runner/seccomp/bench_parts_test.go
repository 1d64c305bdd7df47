package seccomp

import (
	"runtime"
	"testing"
)

func BenchmarkPartDefault(b *testing.B) {
	for b.Loop() {
		Default()
	}
}

func BenchmarkPartResolve(b *testing.B) {
	p := Default()
	for b.Loop() {
		resolve(p, target{goarch: runtime.GOARCH, caps: dockerCaps, kernel: kernel618})
	}
}

func BenchmarkPartGenerate(b *testing.B) {
	r, _ := resolve(Default(), target{goarch: runtime.GOARCH, caps: dockerCaps, kernel: kernel618})
	for b.Loop() {
		generate(r, runtime.GOARCH)
	}
}
