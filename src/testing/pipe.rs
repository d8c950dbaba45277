pub struct Pipe;
pub struct PipeClient;
