module gojinn.example/{{name}}

go 1.21
