//! message stage (being implemented on its branch).
