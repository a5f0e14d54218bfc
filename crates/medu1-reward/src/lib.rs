//! Med-U1 reward functions (in progress).
