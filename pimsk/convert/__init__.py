"""Conversions of lab recordings to OpenSim inputs (C3D -> TRC, GRF MOT, ExternalLoads XML, EMG STO)."""

from pimsk.convert.c3d_to_opensim import C3DConversion, C3DConvertOptions, convert_c3d, convert_c3d_data

__all__ = ["C3DConversion", "C3DConvertOptions", "convert_c3d", "convert_c3d_data"]
