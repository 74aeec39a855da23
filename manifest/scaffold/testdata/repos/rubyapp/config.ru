# A sample Rack app for `gantry init`, served by puma.
run ->(env) { [200, {"content-type" => "text/plain"}, ["rubyapp says hello\n"]] }
