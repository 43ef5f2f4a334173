def function(inputs, outputs, updates=None):
    raise NotImplementedError("cr.function is being written")
