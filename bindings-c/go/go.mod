module github.com/lupa-build/lupa-core/bindings-c/go

go 1.19
