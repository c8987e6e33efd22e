"""Convolution algorithms: one module per algorithm, each implementing the three maps of a ConvGeometry."""
