// A sample Node.js web app for `gantry init`: it answers on 127.0.0.1:$PORT.
const http = require("http");
http.createServer((req, res) => res.end("nodeapp says hello\n")).listen(Number(process.env.PORT), "127.0.0.1");
